// Added tokens (HF tokenizers/src/tokenizer/added_vocabulary.rs): tokens matched in the text
// before the model runs, on the raw text (normalized = false) or after normalization.
#pragma once

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tokenizer/internal.h"
#include "tokenizer/vocab.h"

namespace kpt::tok {

struct AddedToken {
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// Leftmost-longest matcher over a set of strings (HF uses an Aho-Corasick automaton with
// MatchKind::LeftmostLongest; a byte trie walked from each candidate start is equivalent).
class TokenMatcher {
 public:
  void add(std::string_view pattern, int32_t id);
  bool empty() const { return nodes_.size() <= 1; }
  // Calls fn(begin, end, id) for successive non-overlapping matches.
  template <class Fn>
  void for_each_match(std::string_view text, Fn&& fn) const {
    size_t pos = 0;
    while (pos < text.size()) {
      if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
        ++pos;
        continue;
      }
      size_t best_len = 0;
      int32_t best_id = -1;
      uint32_t node = 0;
      for (size_t i = pos; i < text.size(); ++i) {
        node = child(node, static_cast<unsigned char>(text[i]));
        if (node == 0) break;
        if (nodes_[node].id >= 0) {
          best_len = i + 1 - pos;
          best_id = nodes_[node].id;
        }
      }
      if (best_id < 0) {
        ++pos;
        continue;
      }
      fn(pos, pos + best_len, best_id);
      pos += best_len;
    }
  }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, uint32_t>> children;
    int32_t id = -1;
  };
  uint32_t child(uint32_t node, unsigned char b) const {
    for (const auto& [c, n] : nodes_[node].children) {
      if (c == b) return n;
    }
    return 0;
  }
  std::vector<Node> nodes_{1};
  bool first_byte_[256] = {};
};

class AddedVocabulary {
 public:
  // Registers the tokens of tokenizer.json's "added_tokens", assigning ids as HF's add_tokens:
  // the model's id when the model knows the content, else the next free id.
  void load(const Json& list, const std::string& path, const Model& model,
            const Normalizer* normalizer);

  // Splits every untokenized piece around the added tokens found in it (pass 1: raw text), then
  // normalizes the remaining pieces and splits them around normalized tokens (pass 2).
  void extract_and_normalize(PreTokenized& pt, const Normalizer* normalizer) const;

  std::optional<int32_t> token_to_id(std::string_view content) const;
  const AddedToken* find(int32_t id) const;
  // The string HF's decoder sees for an added token: its normalized form when it was
  // normalized on the way in.
  const std::string* decode_string(int32_t id) const;
  bool is_special(std::string_view token) const;
  const StringMap<int32_t>& contents() const { return ids_; }

 private:
  void split(PreTokenized& pt, const TokenMatcher& matcher) const;

  StringMap<int32_t> ids_;
  std::unordered_map<int32_t, AddedToken> tokens_;
  std::unordered_map<int32_t, std::string> normalized_forms_;
  StringMap<bool> special_;
  TokenMatcher raw_matcher_;
  TokenMatcher normalized_matcher_;
};

}  // namespace kpt::tok
