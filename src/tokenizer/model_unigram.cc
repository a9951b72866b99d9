// Unigram language model (HF tokenizers/src/models/unigram): Viterbi over the lattice of
// vocabulary pieces, as HF's encode_optimized (itself SentencePiece's).
#include <cstdio>
#include <limits>

#include <nlohmann/json.hpp>

#include "tokenizer/json_util.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace kpt::tok {
namespace {

// Unknown chars score this much below the worst piece (HF K_UNK_PENALTY).
constexpr double kUnkPenalty = 10.0;

// Byte trie over the pieces: (node, byte) -> child in one hash map, which keeps a 250k-piece
// vocabulary compact.
class Trie {
 public:
  Trie() : terminal_(1, -1) {}
  void insert(std::string_view key, int32_t id) {
    uint32_t node = 0;
    for (unsigned char b : key) {
      auto [it, inserted] =
          children_.try_emplace(edge(node, b), static_cast<uint32_t>(terminal_.size()));
      if (inserted) terminal_.push_back(-1);
      node = it->second;
    }
    terminal_[node] = id;
  }
  // Calls fn(length, id) for every piece that is a prefix of text, shortest first.
  template <class Fn>
  void common_prefixes(std::string_view text, Fn&& fn) const {
    uint32_t node = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      auto it = children_.find(edge(node, static_cast<unsigned char>(text[i])));
      if (it == children_.end()) return;
      node = it->second;
      if (terminal_[node] >= 0) fn(i + 1, terminal_[node]);
    }
  }

 private:
  static uint64_t edge(uint32_t node, unsigned char b) { return (uint64_t(node) << 8) | b; }
  std::unordered_map<uint64_t, uint32_t> children_;
  std::vector<int32_t> terminal_;
};

struct BestPath {
  int32_t id = 0;
  double score = 0.0;
  int64_t starts_at = -1;
};

class UnigramState final : public ModelState {
 public:
  std::vector<BestPath> best;
};

class Unigram final : public Model {
 public:
  Unigram(const Json& j, const std::string& path) {
    const Json& vocab = require_field(j, "vocab", path);
    const std::string vpath = child_path(path, "vocab");
    if (!vocab.is_array())
      fail_file(vpath, "expected an array of [piece, score], got " + json_kind(vocab));
    scores_.reserve(vocab.size());
    double min_score = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < vocab.size(); ++i) {
      const Json& e = vocab[i];
      const std::string epath = vpath + "[" + std::to_string(i) + "]";
      if (!e.is_array() || e.size() != 2)
        fail_file(epath, "expected [piece, score], got " + e.dump());
      std::string piece = as_string(e[0], epath + "[0]");
      const double score = as_double(e[1], epath + "[1]");
      trie_.insert(piece, static_cast<int32_t>(i));
      vocab_.add(std::move(piece), static_cast<int32_t>(i));
      scores_.push_back(score);
      min_score = std::min(min_score, score);
    }
    if (const Json* u = find_field(j, "unk_id")) {
      const uint64_t unk = as_uint(*u, child_path(path, "unk_id"));
      if (vocab.empty()) fail_file(vpath, "the vocabulary is empty but unk_id is set");
      if (unk >= vocab.size()) {
        fail_file(child_path(path, "unk_id"), "unk_id " + std::to_string(unk) +
                                                  " is not below the vocabulary size " +
                                                  std::to_string(vocab.size()));
      }
      unk_id_ = static_cast<int32_t>(unk);
    }
    byte_fallback_ = get_bool(j, "byte_fallback", path, false);
    unk_score_ = min_score - kUnkPenalty;
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      byte_ids_[b] = vocab_.find(name).value_or(-1);
    }
  }

  std::unique_ptr<ModelState> make_state() const override {
    return std::make_unique<UnigramState>();
  }

  void tokenize(std::string_view text, ModelState* state, std::vector<Token>& out) const override {
    const size_t n = text.size();
    auto& best = static_cast<UnigramState*>(state)->best;
    best.assign(n + 1, BestPath{});
    for (size_t start = 0; start < n;) {
      const double base = best[start].score;
      const uint32_t char_len = uni::utf8_len(static_cast<unsigned char>(text[start]));
      bool has_single_char = false;
      trie_.common_prefixes(text.substr(start), [&](size_t len, int32_t piece) {
        // Pieces are looked up by string again, as HF does (duplicates resolve to the last).
        const int32_t id = *vocab_.find(text.substr(start, len));
        BestPath& target = best[start + len];
        const double candidate = scores_[static_cast<size_t>(piece)] + base;
        if (target.starts_at < 0 || candidate > target.score) {
          target = {id, candidate, static_cast<int64_t>(start)};
        }
        has_single_char |= len == char_len;
      });
      if (!has_single_char) {
        BestPath& target = best[start + char_len];
        const double candidate = unk_score_ + base;
        if (target.starts_at < 0 || candidate > target.score) {
          if (unk_id_ < 0) {
            throw Error(ErrorCode::kInvalidFile,
                        "tokenizer.json: model: the Unigram model met an unknown piece but has no "
                        "unk_id");
          }
          target = {unk_id_, candidate, static_cast<int64_t>(start)};
        }
      }
      start += char_len;
    }
    // Walk back, fusing consecutive unknowns into one piece.
    thread_local std::vector<std::pair<uint32_t, uint32_t>> pieces;
    pieces.clear();
    size_t end = n;
    bool in_unk = false;
    while (end > 0) {
      const BestPath& node = best[end];
      const auto start = static_cast<uint32_t>(node.starts_at);
      const bool is_unk = node.id == unk_id_;
      if (is_unk && in_unk) {
        pieces.back().first = start;
      } else {
        pieces.emplace_back(start, static_cast<uint32_t>(end));
      }
      in_unk = is_unk;
      end = start;
    }
    for (size_t k = pieces.size(); k-- > 0;) {
      const auto [b, e] = pieces[k];
      const std::string_view piece = text.substr(b, e - b);
      if (auto id = vocab_.find(piece)) {
        out.push_back({*id, b, e});
        continue;
      }
      if (byte_fallback_) {
        bool all = true;
        for (unsigned char c : piece) all &= byte_ids_[c] >= 0;
        if (all) {
          for (unsigned char c : piece) out.push_back({byte_ids_[c], b, e});
          continue;
        }
      }
      out.push_back({unk_id_, b, e, true});
    }
  }

  std::optional<int32_t> token_to_id(std::string_view token) const override {
    return vocab_.find(token);
  }
  const std::string* id_to_token(int32_t id) const override { return vocab_.token(id); }
  size_t vocab_size() const override { return scores_.size(); }

 private:
  Vocab vocab_;
  std::vector<double> scores_;
  Trie trie_;
  int32_t unk_id_ = -1;
  double unk_score_ = 0.0;
  bool byte_fallback_ = false;
  int32_t byte_ids_[256];
};

}  // namespace

std::unique_ptr<Model> make_unigram(const Json& j, const std::string& path) {
  return std::make_unique<Unigram>(j, path);
}

}  // namespace kpt::tok
