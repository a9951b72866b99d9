// WordPiece (greedy longest-match-first, BERT) and WordLevel (whole-word lookup) models
// (HF tokenizers/src/models/{wordpiece,wordlevel}).
#include "tokenizer/json_util.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace kpt::tok {
namespace {

[[noreturn]] void missing_unk(const std::string& unk) {
  throw Error(ErrorCode::kInvalidFile,
              "tokenizer.json: model.unk_token '" + unk + "' is not in the vocabulary");
}

class WordPieceState final : public ModelState {
 public:
  std::string candidate;
};

class WordPiece final : public Model {
 public:
  WordPiece(const Json& j, const std::string& path) {
    vocab_ = parse_vocab_object(require_field(j, "vocab", path), child_path(path, "vocab"));
    unk_token_ = get_opt_string(j, "unk_token", path).value_or("[UNK]");
    prefix_ = get_opt_string(j, "continuing_subword_prefix", path).value_or("##");
    max_chars_ = get_uint(j, "max_input_chars_per_word", path, 100);
  }

  std::unique_ptr<ModelState> make_state() const override {
    return std::make_unique<WordPieceState>();
  }

  void tokenize(std::string_view text, ModelState* state, std::vector<Token>& out) const override {
    const auto n = static_cast<uint32_t>(text.size());
    if (uni::count_chars(text) > max_chars_) {
      out.push_back({unk_id(), 0, n});
      return;
    }
    std::string& candidate = static_cast<WordPieceState*>(state)->candidate;
    const size_t first = out.size();
    uint32_t start = 0;
    while (start < n) {
      uint32_t end = n;
      int32_t found = -1;
      while (start < end) {
        std::string_view sub = text.substr(start, end - start);
        if (start > 0) {
          candidate.assign(prefix_);
          candidate.append(sub);
          sub = candidate;
        }
        if (auto id = vocab_.find(sub)) {
          found = *id;
          break;
        }
        // Drop the last char of the candidate.
        do {
          --end;
        } while (end > start && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80);
      }
      if (found < 0) {  // one unknown piece makes the whole word unknown
        out.resize(first);
        out.push_back({unk_id(), 0, n});
        return;
      }
      out.push_back({found, start, end});
      start = end;
    }
  }

  std::optional<int32_t> token_to_id(std::string_view token) const override {
    return vocab_.find(token);
  }
  const std::string* id_to_token(int32_t id) const override { return vocab_.token(id); }
  size_t vocab_size() const override { return vocab_.to_id.size(); }

 private:
  int32_t unk_id() const {
    auto id = vocab_.find(unk_token_);
    if (!id) missing_unk(unk_token_);
    return *id;
  }

  Vocab vocab_;
  std::string unk_token_;
  std::string prefix_;
  uint64_t max_chars_ = 100;
};

class WordLevel final : public Model {
 public:
  WordLevel(const Json& j, const std::string& path) {
    vocab_ = parse_vocab_object(require_field(j, "vocab", path), child_path(path, "vocab"));
    unk_token_ = get_opt_string(j, "unk_token", path).value_or("<unk>");
  }

  void tokenize(std::string_view text, ModelState*, std::vector<Token>& out) const override {
    const auto n = static_cast<uint32_t>(text.size());
    if (auto id = vocab_.find(text)) {
      out.push_back({*id, 0, n});
      return;
    }
    auto unk = vocab_.find(unk_token_);
    if (!unk) missing_unk(unk_token_);
    out.push_back({*unk, 0, n});
  }

  std::optional<int32_t> token_to_id(std::string_view token) const override {
    return vocab_.find(token);
  }
  const std::string* id_to_token(int32_t id) const override { return vocab_.token(id); }
  size_t vocab_size() const override { return vocab_.to_id.size(); }

 private:
  Vocab vocab_;
  std::string unk_token_;
};

}  // namespace

std::unique_ptr<Model> make_wordpiece(const Json& j, const std::string& path) {
  return std::make_unique<WordPiece>(j, path);
}

std::unique_ptr<Model> make_wordlevel(const Json& j, const std::string& path) {
  return std::make_unique<WordLevel>(j, path);
}

}  // namespace kpt::tok
