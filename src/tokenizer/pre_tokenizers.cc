// Pre-tokenizers of tokenizer.json (HF tokenizers/src/pre_tokenizers): split the normalized
// text into pre-tokens, optionally transforming them (ByteLevel, Metaspace).
#include <nlohmann/json.hpp>

#include "tokenizer/json_util.h"
#include "tokenizer/unicode.h"

namespace kpt::tok {
namespace {

// GPT-2's pre-tokenization regex, as HF's ByteLevel compiles it.
constexpr std::string_view kByteLevelPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// HF `impl Pattern for Fn(char) -> bool`: every matching char is its own match.
template <class Pred>
void char_spans(std::string_view text, Pred&& pred, std::vector<Span>& out) {
  if (text.empty()) {
    out.push_back({0, 0, false});
    return;
  }
  uint32_t last = 0;
  uint32_t len;
  for (uint32_t i = 0; i < text.size(); i += len) {
    if (pred(uni::decode_utf8(text.data() + i, &len))) {
      if (last < i) out.push_back({last, i, false});
      out.push_back({i, i + len, true});
      last = i + len;
    }
  }
  if (last < text.size()) out.push_back({last, static_cast<uint32_t>(text.size()), false});
}

template <class Pred>
void split_on_chars(PreTokenized& pt, Pred pred, SplitBehavior behavior) {
  thread_local std::vector<Span> spans;
  split_pieces(pt, [&](const Piece& p, std::vector<Piece>& out) {
    spans.clear();
    char_spans(pt.view(p), pred, spans);
    split_by_spans(spans, behavior, p, out);
  });
}

// Rewrites each byte of every untokenized piece as its GPT-2 printable char.
void byte_level_transform(PreTokenized& pt) {
  const char32_t* table = byte_to_char_table();
  for (Piece& p : pt.pieces) {
    if (p.added_id >= 0) continue;
    pt.transform.clear();
    for (uint32_t i = p.begin; i < p.end; ++i) {
      pt.transform.push_char(table[static_cast<unsigned char>(pt.arena.text[i])],
                             pt.arena.align[i]);
    }
    p = pt.commit_transform();
  }
}

class ByteLevel final : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space),
        use_regex_(use_regex),
        regex_(kByteLevelPattern, "pre_tokenizer(ByteLevel)") {}

  void pre_tokenize(PreTokenized& pt) const override {
    thread_local std::vector<Span> spans;
    split_pieces(pt, [&](Piece p, std::vector<Piece>& out) {
      if (add_prefix_space_ && pt.arena.text[p.begin] != ' ') {
        pt.transform.clear();
        pt.transform.push_char(' ', pt.arena.align[p.begin]);
        pt.transform.append_range(pt.arena, p.begin, p.end);
        p = pt.commit_transform();
      }
      if (!use_regex_) {
        out.push_back(p);
        return;
      }
      spans.clear();
      regex_.find_spans(pt.view(p), spans);
      split_by_spans(spans, SplitBehavior::kIsolated, p, out);
    });
    byte_level_transform(pt);
  }

 private:
  bool add_prefix_space_, use_regex_;
  Regex regex_;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Regex regex, SplitBehavior behavior, bool invert)
      : regex_(std::move(regex)), behavior_(behavior), invert_(invert) {}

  void pre_tokenize(PreTokenized& pt) const override {
    thread_local std::vector<Span> spans;
    split_pieces(pt, [&](const Piece& p, std::vector<Piece>& out) {
      spans.clear();
      regex_.find_spans(pt.view(p), spans);
      if (invert_) {
        for (Span& s : spans) s.is_match = !s.is_match;
      }
      split_by_spans(spans, behavior_, p, out);
    });
  }

 private:
  Regex regex_;
  SplitBehavior behavior_;
  bool invert_;
};

class BertPreTokenizer final : public PreTokenizer {
 public:
  void pre_tokenize(PreTokenized& pt) const override {
    // Whitespace removed, then each punctuation char isolated: one pass does both.
    split_pieces(pt, [&](const Piece& p, std::vector<Piece>& out) {
      const std::string_view text = pt.view(p);
      uint32_t start = 0;
      uint32_t len;
      for (uint32_t i = 0; i < text.size(); i += len) {
        const char32_t c = uni::decode_utf8(text.data() + i, &len);
        const bool space = uni::is_whitespace(c);
        if (space || uni::is_punctuation(c)) {
          if (start < i) out.push_back({p.begin + start, p.begin + i, -1});
          if (!space) out.push_back({p.begin + i, p.begin + i + len, -1});
          start = i + len;
        }
      }
      if (start < text.size()) out.push_back({p.begin + start, p.end, -1});
    });
  }
};

class Whitespace final : public PreTokenizer {
 public:
  void pre_tokenize(PreTokenized& pt) const override {
    // The regex \w+|[^\w\s]+ with whitespace removed: runs of word chars and runs of other
    // non-space chars.
    split_pieces(pt, [&](const Piece& p, std::vector<Piece>& out) {
      const std::string_view text = pt.view(p);
      int run_kind = 0;  // 0 none, 1 word, 2 other
      uint32_t start = 0;
      uint32_t len;
      for (uint32_t i = 0; i < text.size(); i += len) {
        const char32_t c = uni::decode_utf8(text.data() + i, &len);
        const int kind = uni::is_word(c) ? 1 : (uni::is_whitespace(c) ? 0 : 2);
        if (kind != run_kind) {
          if (run_kind != 0) out.push_back({p.begin + start, p.begin + i, -1});
          start = i;
          run_kind = kind;
        }
      }
      if (run_kind != 0) out.push_back({p.begin + start, p.end, -1});
    });
  }
};

class WhitespaceSplit final : public PreTokenizer {
 public:
  void pre_tokenize(PreTokenized& pt) const override {
    split_on_chars(pt, uni::is_whitespace, SplitBehavior::kRemoved);
  }
};

class Digits final : public PreTokenizer {
 public:
  explicit Digits(bool individual) : individual_(individual) {}
  void pre_tokenize(PreTokenized& pt) const override {
    split_on_chars(pt, uni::is_numeric,
                   individual_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous);
  }

 private:
  bool individual_;
};

class Punctuation final : public PreTokenizer {
 public:
  explicit Punctuation(SplitBehavior behavior) : behavior_(behavior) {}
  void pre_tokenize(PreTokenized& pt) const override {
    split_on_chars(pt, uni::is_punctuation, behavior_);
  }

 private:
  SplitBehavior behavior_;
};

class CharDelimiterSplit final : public PreTokenizer {
 public:
  explicit CharDelimiterSplit(char32_t delimiter) : delimiter_(delimiter) {}
  void pre_tokenize(PreTokenized& pt) const override {
    split_on_chars(
        pt, [d = delimiter_](char32_t c) { return c == d; }, SplitBehavior::kRemoved);
  }

 private:
  char32_t delimiter_;
};

enum class PrependScheme { kFirst, kNever, kAlways };

class Metaspace final : public PreTokenizer {
 public:
  Metaspace(char32_t replacement, PrependScheme scheme, bool split)
      : replacement_(replacement),
        utf8_(uni::to_utf8(replacement)),
        scheme_(scheme),
        split_(split) {}

  void pre_tokenize(PreTokenized& pt) const override {
    thread_local std::vector<Span> spans;
    split_pieces(pt, [&](Piece p, std::vector<Piece>& out) {
      const std::string_view text = pt.view(p);
      const bool starts_with_replacement = text.starts_with(utf8_);
      bool prepend = false;
      if (!starts_with_replacement && !text.starts_with(' ')) {
        // "first" only prepends to the pre-token that starts the input.
        prepend = scheme_ == PrependScheme::kAlways ||
                  (scheme_ == PrependScheme::kFirst && pt.arena.align[p.begin].start == 0);
      }
      if (prepend || text.find(' ') != std::string_view::npos) {
        pt.transform.clear();
        if (prepend) pt.transform.push_bytes(utf8_, pt.arena.align[p.begin]);
        for (uint32_t i = p.begin; i < p.end; ++i) {
          if (pt.arena.text[i] == ' ') {
            pt.transform.push_bytes(utf8_, pt.arena.align[i]);
          } else {
            pt.transform.text.push_back(pt.arena.text[i]);
            pt.transform.align.push_back(pt.arena.align[i]);
          }
        }
        p = pt.commit_transform();
      }
      if (!split_) {
        out.push_back(p);
        return;
      }
      spans.clear();
      char_spans(
          pt.view(p), [r = replacement_](char32_t c) { return c == r; }, spans);
      split_by_spans(spans, SplitBehavior::kMergedWithNext, p, out);
    });
  }

 private:
  char32_t replacement_;
  std::string utf8_;
  PrependScheme scheme_;
  bool split_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> items)
      : items_(std::move(items)) {}
  void pre_tokenize(PreTokenized& pt) const override {
    for (const auto& p : items_) p->pre_tokenize(pt);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> items_;
};

}  // namespace

Piece PreTokenized::commit_transform() {
  const auto begin = static_cast<uint32_t>(arena.size());
  arena.text.append(transform.text);
  arena.align.insert(arena.align.end(), transform.align.begin(), transform.align.end());
  return {begin, static_cast<uint32_t>(arena.size()), -1};
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, const std::string& path) {
  const std::string type = type_of(j, path);
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevel>(get_bool(j, "add_prefix_space", path, true),
                                       get_bool(j, "use_regex", path, true));
  }
  if (type == "Split") {
    const Json& pattern = require_field(j, "pattern", path);
    const std::string ppath = child_path(path, "pattern");
    const SplitBehavior behavior =
        parse_split_behavior(require_field(j, "behavior", path), child_path(path, "behavior"));
    const bool invert = get_bool(j, "invert", path, false);
    if (const Json* s = pattern.is_object() ? find_field(pattern, "String") : nullptr) {
      return std::make_unique<SplitPreTokenizer>(
          Regex::literal(as_string(*s, ppath + ".String"), ppath), behavior, invert);
    }
    if (const Json* r = pattern.is_object() ? find_field(pattern, "Regex") : nullptr) {
      return std::make_unique<SplitPreTokenizer>(Regex(as_string(*r, ppath + ".Regex"), ppath),
                                                 behavior, invert);
    }
    fail_file(ppath, "expected {\"String\": ...} or {\"Regex\": ...}, got " + pattern.dump());
  }
  if (type == "BertPreTokenizer") return std::make_unique<BertPreTokenizer>();
  if (type == "Whitespace") return std::make_unique<Whitespace>();
  if (type == "WhitespaceSplit") return std::make_unique<WhitespaceSplit>();
  if (type == "Digits") {
    return std::make_unique<Digits>(get_bool(j, "individual_digits", path, false));
  }
  if (type == "Punctuation") {
    const Json* b = find_field(j, "behavior");
    return std::make_unique<Punctuation>(b ? parse_split_behavior(*b, child_path(path, "behavior"))
                                           : SplitBehavior::kIsolated);
  }
  if (type == "CharDelimiterSplit") {
    return std::make_unique<CharDelimiterSplit>(get_char(j, "delimiter", path));
  }
  if (type == "Metaspace") {
    const char32_t replacement = get_char(j, "replacement", path);
    PrependScheme scheme = PrependScheme::kAlways;
    if (auto s = get_opt_string(j, "prepend_scheme", path)) {
      if (*s == "first") {
        scheme = PrependScheme::kFirst;
      } else if (*s == "never") {
        scheme = PrependScheme::kNever;
      } else if (*s == "always") {
        scheme = PrependScheme::kAlways;
      } else {
        fail_file(child_path(path, "prepend_scheme"),
                  "unknown prepend_scheme '" + *s + "' (expected first, never or always)");
      }
    }
    // Files older than prepend_scheme say add_prefix_space; false means never.
    if (const Json* a = find_field(j, "add_prefix_space")) {
      if (!as_bool(*a, child_path(path, "add_prefix_space"))) {
        if (scheme != PrependScheme::kNever && find_field(j, "prepend_scheme") != nullptr) {
          fail_file(path, "add_prefix_space does not match declared prepend_scheme");
        }
        scheme = PrependScheme::kNever;
      }
    }
    return std::make_unique<Metaspace>(replacement, scheme, get_bool(j, "split", path, true));
  }
  if (type == "Sequence") {
    const Json& list = require_field(j, "pretokenizers", path);
    const std::string lpath = child_path(path, "pretokenizers");
    if (!list.is_array()) fail_file(lpath, "expected an array, got " + json_kind(list));
    std::vector<std::unique_ptr<PreTokenizer>> items;
    for (size_t i = 0; i < list.size(); ++i) {
      items.push_back(make_pre_tokenizer(list[i], lpath + "[" + std::to_string(i) + "]"));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(items));
  }
  if (type == "UnicodeScripts" || type == "FixedLength") {
    throw Error(ErrorCode::kUnsupported,
                "tokenizer.json: " + path + ": the " + type + " pre-tokenizer is not supported");
  }
  fail_file(child_path(path, "type"), "unknown pre-tokenizer type '" + type + "'");
}

}  // namespace kpt::tok
