// Post-processors of tokenizer.json (HF tokenizers/src/processors): add the model's special
// tokens around one sequence or a pair and assign type ids.
#include <map>

#include <nlohmann/json.hpp>

#include "tokenizer/json_util.h"

namespace kpt::tok {
namespace {

// An encoding made only of special tokens.
Encoding special_encoding(const std::vector<int64_t>& ids, const std::vector<std::string>& tokens,
                          int64_t type_id) {
  Encoding e;
  e.ids = ids;
  e.tokens = tokens;
  e.type_ids.assign(ids.size(), type_id);
  e.attention_mask.assign(ids.size(), 1);
  e.special_tokens_mask.assign(ids.size(), 1);
  e.offsets.assign(ids.size(), {0, 0});
  return e;
}

struct SpecialToken {
  std::string name;
  int64_t id;
};

SpecialToken parse_name_id(const Json& j, const std::string& path) {
  if (!j.is_array() || j.size() != 2) fail_file(path, "expected [token, id], got " + j.dump());
  return {as_string(j[0], path + "[0]"), static_cast<int64_t>(as_uint(j[1], path + "[1]"))};
}

// BertProcessing and RobertaProcessing differ only in the pair layout and type ids.
class ClsSepProcessing final : public PostProcessor {
 public:
  ClsSepProcessing(SpecialToken cls, SpecialToken sep, bool roberta, bool trim_offsets,
                   bool add_prefix_space)
      : cls_(std::move(cls)),
        sep_(std::move(sep)),
        roberta_(roberta),
        trim_offsets_(trim_offsets),
        add_prefix_space_(add_prefix_space) {}

  size_t added_tokens(bool is_pair) const override { return is_pair ? (roberta_ ? 4 : 3) : 2; }

  void process_encodings(std::vector<Encoding>& encodings, bool add_special) const override {
    if (roberta_) {
      if (trim_offsets_) {
        for (Encoding& e : encodings) trim_byte_level_offsets(e, add_prefix_space_);
      }
      for (Encoding& e : encodings) std::fill(e.type_ids.begin(), e.type_ids.end(), 0);
    }
    if (!add_special) return;
    std::vector<Encoding> out;
    for (size_t i = 0; i < encodings.size(); ++i) {
      const bool first = i == 0;
      const int64_t type_id = (first || roberta_) ? 0 : 1;
      if (first || roberta_) {
        out.push_back(special_encoding({first ? cls_.id : sep_.id}, {first ? cls_.name : sep_.name},
                                       type_id));
      }
      out.push_back(std::move(encodings[i]));
      out.push_back(special_encoding({sep_.id}, {sep_.name}, type_id));
    }
    encodings = std::move(out);
  }

 private:
  SpecialToken cls_, sep_;
  bool roberta_, trim_offsets_, add_prefix_space_;
};

class ByteLevelProcessing final : public PostProcessor {
 public:
  ByteLevelProcessing(bool trim_offsets, bool add_prefix_space)
      : trim_offsets_(trim_offsets), add_prefix_space_(add_prefix_space) {}
  size_t added_tokens(bool) const override { return 0; }
  void process_encodings(std::vector<Encoding>& encodings, bool) const override {
    if (!trim_offsets_) return;
    for (Encoding& e : encodings) trim_byte_level_offsets(e, add_prefix_space_);
  }

 private:
  bool trim_offsets_, add_prefix_space_;
};

struct TemplatePiece {
  bool is_sequence;
  size_t sequence;   // 0 for A, 1 for B
  std::string name;  // special token
  int64_t type_id;
};

class TemplateProcessing final : public PostProcessor {
 public:
  TemplateProcessing(const Json& j, const std::string& path) {
    const Json& specials = require_field(j, "special_tokens", path);
    const std::string spath = child_path(path, "special_tokens");
    if (!specials.is_object()) fail_file(spath, "expected an object, got " + json_kind(specials));
    for (auto it = specials.begin(); it != specials.end(); ++it) {
      const std::string tpath = spath + "[\"" + it.key() + "\"]";
      expect_object(it.value(), tpath);
      const Json& ids = require_field(it.value(), "ids", tpath);
      const Json& tokens = require_field(it.value(), "tokens", tpath);
      if (!ids.is_array() || !tokens.is_array() || ids.size() != tokens.size()) {
        fail_file(tpath, "expected arrays \"ids\" and \"tokens\" of the same length");
      }
      Special s;
      for (size_t k = 0; k < ids.size(); ++k) {
        s.ids.push_back(static_cast<int64_t>(as_uint(ids[k], tpath + ".ids")));
        s.tokens.push_back(as_string(tokens[k], tpath + ".tokens"));
      }
      specials_[it.key()] = std::move(s);
    }
    single_ = parse_template(require_field(j, "single", path), child_path(path, "single"));
    pair_ = parse_template(require_field(j, "pair", path), child_path(path, "pair"));
    added_single_ = count_added(single_);
    added_pair_ = count_added(pair_);
  }

  size_t added_tokens(bool is_pair) const override { return is_pair ? added_pair_ : added_single_; }

  void process_encodings(std::vector<Encoding>& encodings, bool add_special) const override {
    const auto& tmpl = encodings.size() == 2 ? pair_ : single_;
    std::vector<Encoding> out;
    for (const TemplatePiece& p : tmpl) {
      if (p.is_sequence) {
        if (p.sequence >= encodings.size()) continue;
        Encoding e = encodings[p.sequence];
        std::fill(e.type_ids.begin(), e.type_ids.end(), p.type_id);
        out.push_back(std::move(e));
      } else if (add_special) {
        const Special& s = specials_.at(p.name);
        out.push_back(special_encoding(s.ids, s.tokens, p.type_id));
      }
    }
    encodings = std::move(out);
  }

 private:
  struct Special {
    std::vector<int64_t> ids;
    std::vector<std::string> tokens;
  };

  std::vector<TemplatePiece> parse_template(const Json& j, const std::string& path) const {
    if (!j.is_array()) fail_file(path, "expected an array of template pieces, got " + json_kind(j));
    std::vector<TemplatePiece> pieces;
    for (size_t i = 0; i < j.size(); ++i) {
      const std::string ipath = path + "[" + std::to_string(i) + "]";
      const Json& p = j[i];
      expect_object(p, ipath);
      if (const Json* seq = find_field(p, "Sequence")) {
        expect_object(*seq, ipath + ".Sequence");
        const std::string id = get_string(*seq, "id", ipath + ".Sequence");
        if (id != "A" && id != "B") fail_file(ipath + ".Sequence.id", "expected A or B, got " + id);
        pieces.push_back({true, id == "A" ? 0u : 1u, "",
                          static_cast<int64_t>(get_uint(*seq, "type_id", ipath + ".Sequence", 0))});
      } else if (const Json* sp = find_field(p, "SpecialToken")) {
        expect_object(*sp, ipath + ".SpecialToken");
        std::string id = get_string(*sp, "id", ipath + ".SpecialToken");
        if (!specials_.count(id)) {
          fail_file(ipath, "special token '" + id + "' is missing from special_tokens");
        }
        pieces.push_back(
            {false, 0, std::move(id),
             static_cast<int64_t>(get_uint(*sp, "type_id", ipath + ".SpecialToken", 0))});
      } else {
        fail_file(ipath,
                  "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}, got " + p.dump());
      }
    }
    return pieces;
  }

  size_t count_added(const std::vector<TemplatePiece>& tmpl) const {
    size_t n = 0;
    for (const auto& p : tmpl) {
      if (!p.is_sequence) n += specials_.at(p.name).ids.size();
    }
    return n;
  }

  std::map<std::string, Special> specials_;
  std::vector<TemplatePiece> single_, pair_;
  size_t added_single_ = 0, added_pair_ = 0;
};

class SequenceProcessing final : public PostProcessor {
 public:
  explicit SequenceProcessing(std::vector<std::unique_ptr<PostProcessor>> items)
      : items_(std::move(items)) {}
  size_t added_tokens(bool is_pair) const override {
    size_t n = 0;
    for (const auto& p : items_) n += p->added_tokens(is_pair);
    return n;
  }
  void process_encodings(std::vector<Encoding>& encodings, bool add_special) const override {
    for (const auto& p : items_) p->process_encodings(encodings, add_special);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> items_;
};

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const Json& j, const std::string& path) {
  const std::string type = type_of(j, path);
  if (type == "TemplateProcessing") return std::make_unique<TemplateProcessing>(j, path);
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    const bool roberta = type == "RobertaProcessing";
    return std::make_unique<ClsSepProcessing>(
        parse_name_id(require_field(j, "cls", path), child_path(path, "cls")),
        parse_name_id(require_field(j, "sep", path), child_path(path, "sep")), roberta,
        roberta && get_bool(j, "trim_offsets", path, true),
        get_bool(j, "add_prefix_space", path, true));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelProcessing>(get_bool(j, "trim_offsets", path, true),
                                                 get_bool(j, "add_prefix_space", path, true));
  }
  if (type == "Sequence") {
    const Json& list = require_field(j, "processors", path);
    const std::string lpath = child_path(path, "processors");
    if (!list.is_array()) fail_file(lpath, "expected an array, got " + json_kind(list));
    std::vector<std::unique_ptr<PostProcessor>> items;
    for (size_t i = 0; i < list.size(); ++i) {
      items.push_back(make_post_processor(list[i], lpath + "[" + std::to_string(i) + "]"));
    }
    return std::make_unique<SequenceProcessing>(std::move(items));
  }
  fail_file(child_path(path, "type"), "unknown post-processor type '" + type + "'");
}

}  // namespace kpt::tok
