#include "tokenizer/added_vocabulary.h"

#include <nlohmann/json.hpp>

#include "tokenizer/json_util.h"
#include "tokenizer/unicode.h"

namespace kpt::tok {

void TokenMatcher::add(std::string_view pattern, int32_t id) {
  if (pattern.empty()) return;
  uint32_t node = 0;
  for (unsigned char b : pattern) {
    uint32_t next = child(node, b);
    if (next == 0) {
      next = static_cast<uint32_t>(nodes_.size());
      nodes_[node].children.emplace_back(b, next);
      nodes_.emplace_back();
    }
    node = next;
  }
  // HF builds the automaton from a map keyed by content: the last token with a pattern wins.
  nodes_[node].id = id;
  first_byte_[static_cast<unsigned char>(pattern[0])] = true;
}

void AddedVocabulary::load(const Json& list, const std::string& path, const Model& model,
                           const Normalizer* normalizer) {
  if (!list.is_array()) fail_file(path, "expected an array, got " + json_kind(list));
  auto next_id = static_cast<int32_t>(model.vocab_size());
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string ipath = path + "[" + std::to_string(i) + "]";
    const Json& j = list[i];
    expect_object(j, ipath);
    AddedToken t;
    t.content = get_string(j, "content", ipath);
    t.special = get_bool(j, "special", ipath, false);
    t.single_word = get_bool(j, "single_word", ipath, false);
    t.lstrip = get_bool(j, "lstrip", ipath, false);
    t.rstrip = get_bool(j, "rstrip", ipath, false);
    t.normalized = get_bool(j, "normalized", ipath, !t.special);
    if (t.content.empty()) continue;
    if (uni::find_invalid_utf8(t.content) != std::string_view::npos) {
      fail_file(ipath + ".content", "is not valid UTF-8");
    }
    // The "id" field is informational: HF re-derives ids the same way as here.
    int32_t id;
    if (auto known = token_to_id(t.content)) {
      id = *known;
    } else if (auto in_model = model.token_to_id(t.content)) {
      id = *in_model;
    } else {
      id = next_id++;
    }
    normalized_forms_.erase(id);
    if (t.normalized && normalizer != nullptr) {
      AlignedText out;
      std::vector<Align> align(t.content.size());
      if (normalizer->normalize(t.content, align.data(), out) && out.text != t.content) {
        normalized_forms_[id] = out.text;
      }
    }
    ids_[t.content] = id;
    if (t.special) special_[t.content] = true;
    tokens_[id] = std::move(t);
  }
  for (const auto& [id, t] : tokens_) {
    if (t.normalized) {
      auto it = normalized_forms_.find(id);
      normalized_matcher_.add(it != normalized_forms_.end() ? it->second : t.content, id);
    } else {
      raw_matcher_.add(t.content, id);
    }
  }
}

std::optional<int32_t> AddedVocabulary::token_to_id(std::string_view content) const {
  auto it = ids_.find(content);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

const AddedToken* AddedVocabulary::find(int32_t id) const {
  auto it = tokens_.find(id);
  return it == tokens_.end() ? nullptr : &it->second;
}

const std::string* AddedVocabulary::decode_string(int32_t id) const {
  auto it = tokens_.find(id);
  if (it == tokens_.end()) return nullptr;
  auto n = normalized_forms_.find(id);
  return n != normalized_forms_.end() ? &n->second : &it->second.content;
}

bool AddedVocabulary::is_special(std::string_view token) const {
  return special_.find(token) != special_.end();
}

// HF AddedVocabulary::find_matches + split_with_indices for every untokenized piece.
void AddedVocabulary::split(PreTokenized& pt, const TokenMatcher& matcher) const {
  // Runs even without tokens to match: it also drops pieces the normalizer emptied.
  split_pieces(pt, [&](const Piece& p, std::vector<Piece>& out) {
    if (matcher.empty()) {
      out.push_back(p);
      return;
    }
    const std::string_view text = pt.view(p);
    size_t start_offset = 0;
    matcher.for_each_match(text, [&](size_t start, size_t stop, int32_t id) {
      const AddedToken& t = tokens_.at(id);
      uint32_t len;
      if (t.single_word) {
        // Neither side may continue a word (regex \w).
        bool word_before = false;
        if (start > 0) {
          size_t k = start - 1;
          while (k > 0 && (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80) --k;
          word_before = uni::is_word(uni::decode_utf8(text.data() + k, &len));
        }
        const bool word_after =
            stop < text.size() && uni::is_word(uni::decode_utf8(text.data() + stop, &len));
        if (word_before || word_after) return;
      }
      if (t.lstrip) {
        size_t s = start;
        while (s > 0) {
          size_t k = s - 1;
          while (k > 0 && (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80) --k;
          if (!uni::is_whitespace(uni::decode_utf8(text.data() + k, &len))) break;
          s = k;
        }
        start = std::max(s, start_offset);
      }
      if (t.rstrip) {
        while (stop < text.size() &&
               uni::is_whitespace(uni::decode_utf8(text.data() + stop, &len))) {
          stop += len;
        }
      }
      if (start_offset < start) {
        out.push_back({p.begin + static_cast<uint32_t>(start_offset),
                       p.begin + static_cast<uint32_t>(start), -1});
      }
      out.push_back(
          {p.begin + static_cast<uint32_t>(start), p.begin + static_cast<uint32_t>(stop), id});
      start_offset = stop;
    });
    if (start_offset < text.size()) {
      out.push_back({p.begin + static_cast<uint32_t>(start_offset), p.end, -1});
    }
  });
}

void AddedVocabulary::extract_and_normalize(PreTokenized& pt, const Normalizer* normalizer) const {
  split(pt, raw_matcher_);
  if (normalizer != nullptr) {
    for (Piece& p : pt.pieces) {
      if (p.added_id >= 0) continue;
      pt.transform.clear();
      const std::string_view text = pt.view(p);
      if (normalizer->normalize(text, pt.arena.align.data() + p.begin, pt.transform)) {
        p = pt.commit_transform();
      }
    }
  }
  split(pt, normalized_matcher_);
}

}  // namespace kpt::tok
