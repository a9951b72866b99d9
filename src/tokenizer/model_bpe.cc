// Byte-pair encoding (HF tokenizers/src/models/bpe): byte-level (GPT-2, Qwen) and
// SentencePiece-style (byte_fallback, fuse_unk) vocabularies.
#include <algorithm>
#include <cstdio>

#include "tokenizer/json_util.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace kpt::tok {
namespace {

// Words longer than this are not cached (HF's MAX_LENGTH), nor more than this many words.
constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kCacheCapacity = 1 << 16;
// Single-char tokens of code points below this are found by table instead of hashing.
constexpr char32_t kCharTableSize = 0x10000;

struct MergeValue {
  uint32_t rank;
  int32_t new_id;
};

// Open-addressing map from a token pair to its merge; the hottest lookup of BPE.
class PairMap {
 public:
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    keys_.assign(cap, kEmpty);
    values_.assign(cap, MergeValue{});
    mask_ = cap - 1;
  }
  // Later inserts of the same pair win, as in HF's HashMap::collect.
  void insert(int32_t a, int32_t b, MergeValue v) {
    const uint64_t key = pack(a, b);
    size_t i = slot(key);
    while (keys_[i] != kEmpty && keys_[i] != key) i = (i + 1) & mask_;
    keys_[i] = key;
    values_[i] = v;
  }
  const MergeValue* find(int32_t a, int32_t b) const {
    const uint64_t key = pack(a, b);
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      if (keys_[i] == key) return &values_[i];
      if (keys_[i] == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t pack(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  size_t slot(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 32) & mask_;
  }
  std::vector<uint64_t> keys_;
  std::vector<MergeValue> values_;
  size_t mask_ = 0;
};

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  uint32_t len;  // bytes of the word covered; 0 once merged into its left neighbour
};

struct QueuedMerge {
  uint32_t rank;
  uint32_t pos;
  int32_t new_id;
  // Min-heap on (rank, pos) through std::*_heap's max-heap.
  bool operator<(const QueuedMerge& o) const {
    return rank != o.rank ? rank > o.rank : pos > o.pos;
  }
};

struct CachedWord {
  uint32_t first;  // into BpeState::ids / lens
  uint32_t count;
};

class BpeState final : public ModelState {
 public:
  StringMap<CachedWord> cache;
  std::vector<int32_t> ids;
  std::vector<uint32_t> lens;
  std::vector<Symbol> symbols;
  std::vector<QueuedMerge> queue;
  std::string scratch;
};

class Bpe final : public Model {
 public:
  Bpe(const Json& j, const std::string& path);

  void tokenize(std::string_view text, ModelState* state, std::vector<Token>& out) const override;
  std::unique_ptr<ModelState> make_state() const override { return std::make_unique<BpeState>(); }
  std::optional<int32_t> token_to_id(std::string_view token) const override {
    return vocab_.find(token);
  }
  const std::string* id_to_token(int32_t id) const override { return vocab_.token(id); }
  size_t vocab_size() const override { return vocab_.to_id.size(); }

 private:
  void merge_word(std::string_view word, BpeState& st) const;
  void merge_all(BpeState& st) const;
  int32_t lookup_char(std::string_view ch, bool is_first, bool is_last, std::string& scratch) const;

  Vocab vocab_;
  PairMap merges_;
  std::optional<std::string> unk_token_;
  std::string prefix_;  // continuing_subword_prefix ("" = none)
  std::string suffix_;  // end_of_word_suffix ("" = none)
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::vector<int32_t> char_ids_;  // single-char tokens by code point, -1 when absent
  int32_t byte_ids_[256];          // "<0xAB>" tokens for byte fallback, -1 when absent
};

Bpe::Bpe(const Json& j, const std::string& path) {
  vocab_ = parse_vocab_object(require_field(j, "vocab", path), child_path(path, "vocab"));
  if (const Json* d = find_field(j, "dropout")) {
    const double p = as_double(*d, child_path(path, "dropout"));
    if (p < 0.0 || p > 1.0) fail_file(child_path(path, "dropout"), "must be in [0, 1]");
    // Dropout is a training-time augmentation; inference runs without it.
  }
  unk_token_ = get_opt_string(j, "unk_token", path);
  prefix_ = get_opt_string(j, "continuing_subword_prefix", path).value_or("");
  suffix_ = get_opt_string(j, "end_of_word_suffix", path).value_or("");
  fuse_unk_ = get_bool(j, "fuse_unk", path, false);
  byte_fallback_ = get_bool(j, "byte_fallback", path, false);
  ignore_merges_ = get_bool(j, "ignore_merges", path, false);

  const Json& merges = require_field(j, "merges", path);
  const std::string mpath = child_path(path, "merges");
  if (!merges.is_array()) fail_file(mpath, "expected an array, got " + json_kind(merges));
  merges_.reserve(merges.size());
  std::string merged;
  for (size_t i = 0; i < merges.size(); ++i) {
    const Json& m = merges[i];
    const std::string ipath = mpath + "[" + std::to_string(i) + "]";
    std::string a, b;
    if (m.is_string()) {  // legacy "a b"
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        fail_file(ipath,
                  "expected a merge \"left right\" with exactly one space, got \"" + s + "\"");
      }
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      fail_file(ipath,
                "expected a merge as \"left right\" or [\"left\", \"right\"], got " + m.dump());
    }
    const auto a_id = vocab_.find(a);
    if (!a_id) fail_file(ipath, "merge token '" + a + "' is not in the vocabulary");
    const auto b_id = vocab_.find(b);
    if (!b_id) fail_file(ipath, "merge token '" + b + "' is not in the vocabulary");
    if (b.size() < prefix_.size()) {
      fail_file(ipath, "merge token '" + b + "' is shorter than the continuing_subword_prefix");
    }
    merged.assign(a);
    merged.append(b, prefix_.size());
    const auto new_id = vocab_.find(merged);
    if (!new_id) fail_file(ipath, "merged token '" + merged + "' is not in the vocabulary");
    merges_.insert(*a_id, *b_id, {static_cast<uint32_t>(i), *new_id});
  }

  char_ids_.assign(kCharTableSize, -1);
  for (const auto& [token, id] : vocab_.to_id) {
    if (token.empty()) continue;
    uint32_t len;
    const char32_t c = uni::decode_utf8(token.data(), &len);
    if (len == token.size() && c < kCharTableSize) char_ids_[c] = id;
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    byte_ids_[b] = vocab_.find(name).value_or(-1);
  }
}

int32_t Bpe::lookup_char(std::string_view ch, bool is_first, bool is_last,
                         std::string& scratch) const {
  const bool decorate = (!is_first && !prefix_.empty()) || (is_last && !suffix_.empty());
  if (!decorate) {
    uint32_t len;
    const char32_t c = uni::decode_utf8(ch.data(), &len);
    if (c < kCharTableSize) return char_ids_[c];
    return vocab_.find(ch).value_or(-1);
  }
  scratch.clear();
  if (!is_first) scratch += prefix_;
  scratch += ch;
  if (is_last) scratch += suffix_;
  return vocab_.find(scratch).value_or(-1);
}

void Bpe::merge_word(std::string_view word, BpeState& st) const {
  auto& symbols = st.symbols;
  symbols.clear();
  auto add = [&](int32_t id, uint32_t len) {
    const auto n = static_cast<int32_t>(symbols.size());
    if (n > 0) symbols.back().next = n;
    symbols.push_back({id, n - 1, -1, len});
  };
  int32_t unk_id = -1;  // a pending unknown, not yet added so that it can be fused
  uint32_t unk_len = 0;
  uint32_t len;
  for (size_t i = 0; i < word.size(); i += len) {
    len = uni::utf8_len(static_cast<unsigned char>(word[i]));
    const bool is_first = i == 0;
    const bool is_last = i + len >= word.size();
    const int32_t id = lookup_char(word.substr(i, len), is_first, is_last, st.scratch);
    if (id >= 0) {
      if (unk_id >= 0) {
        add(unk_id, unk_len);
        unk_id = -1;
      }
      add(id, len);
      continue;
    }
    if (byte_fallback_) {
      // HF falls back on the bytes of the decorated string (prefix/suffix included).
      std::string_view bytes = word.substr(i, len);
      std::string decorated;
      if ((!is_first && !prefix_.empty()) || (is_last && !suffix_.empty())) {
        decorated = (is_first ? "" : prefix_) + std::string(bytes) + (is_last ? suffix_ : "");
        bytes = decorated;
      }
      bool all = true;
      for (unsigned char b : bytes) all &= byte_ids_[b] >= 0;
      if (all) {
        for (unsigned char b : bytes) add(byte_ids_[b], 1);
        continue;
      }
    }
    if (unk_token_) {
      const auto unk = vocab_.find(*unk_token_);
      if (!unk) {
        throw Error(ErrorCode::kInvalidFile, "tokenizer.json: model.unk_token '" + *unk_token_ +
                                                 "' is not in the vocabulary");
      }
      if (unk_id >= 0 && fuse_unk_) {
        unk_len += len;
      } else {
        if (unk_id >= 0) add(unk_id, unk_len);
        unk_id = *unk;
        unk_len = len;
      }
    }
  }
  if (unk_id >= 0) add(unk_id, unk_len);
  merge_all(st);
}

// HF Word::merge_all: repeatedly merge the lowest-ranked pair, leftmost first.
void Bpe::merge_all(BpeState& st) const {
  auto& symbols = st.symbols;
  auto& queue = st.queue;
  queue.clear();
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const MergeValue* m = merges_.find(symbols[i].id, symbols[i + 1].id)) {
      queue.push_back({m->rank, static_cast<uint32_t>(i), m->new_id});
    }
  }
  std::make_heap(queue.begin(), queue.end());
  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end());
    const QueuedMerge top = queue.back();
    queue.pop_back();
    Symbol& cur = symbols[top.pos];
    if (cur.len == 0 || cur.next == -1) continue;
    const auto next_pos = static_cast<size_t>(cur.next);
    const Symbol right = symbols[next_pos];
    // Skip entries made stale by an earlier merge.
    const MergeValue* m = merges_.find(cur.id, right.id);
    if (m == nullptr || m->new_id != top.new_id) continue;

    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    symbols[next_pos].len = 0;
    if (right.next >= 0)
      symbols[static_cast<size_t>(right.next)].prev = static_cast<int32_t>(top.pos);

    if (cur.prev >= 0) {
      const Symbol& prev = symbols[static_cast<size_t>(cur.prev)];
      if (const MergeValue* pm = merges_.find(prev.id, cur.id)) {
        queue.push_back({pm->rank, static_cast<uint32_t>(cur.prev), pm->new_id});
        std::push_heap(queue.begin(), queue.end());
      }
    }
    if (cur.next >= 0) {
      const Symbol& nxt = symbols[static_cast<size_t>(cur.next)];
      if (const MergeValue* nm = merges_.find(cur.id, nxt.id)) {
        queue.push_back({nm->rank, top.pos, nm->new_id});
        std::push_heap(queue.begin(), queue.end());
      }
    }
  }
}

void Bpe::tokenize(std::string_view text, ModelState* state, std::vector<Token>& out) const {
  if (text.empty()) return;
  if (ignore_merges_) {
    if (auto id = vocab_.find(text)) {
      out.push_back({*id, 0, static_cast<uint32_t>(text.size())});
      return;
    }
  }
  auto& st = *static_cast<BpeState*>(state);
  if (auto it = st.cache.find(text); it != st.cache.end()) {
    uint32_t offset = 0;
    for (uint32_t k = 0; k < it->second.count; ++k) {
      const uint32_t len = st.lens[it->second.first + k];
      out.push_back({st.ids[it->second.first + k], offset, offset + len});
      offset += len;
    }
    return;
  }
  merge_word(text, st);
  const bool cache = text.size() < kMaxCachedWordBytes && st.cache.size() < kCacheCapacity;
  const auto first = static_cast<uint32_t>(st.ids.size());
  uint32_t offset = 0;
  uint32_t count = 0;
  for (const Symbol& s : st.symbols) {
    if (s.len == 0) continue;
    out.push_back({s.id, offset, offset + s.len});
    offset += s.len;
    if (cache) {
      st.ids.push_back(s.id);
      st.lens.push_back(s.len);
      ++count;
    }
  }
  if (cache) st.cache.emplace(std::string(text), CachedWord{first, count});
}

}  // namespace

std::unique_ptr<Model> make_bpe(const Json& j, const std::string& path) {
  return std::make_unique<Bpe>(j, path);
}

Vocab parse_vocab_object(const Json& j, const std::string& path) {
  if (!j.is_object()) fail_file(path, "expected an object of token -> id, got " + json_kind(j));
  Vocab v;
  v.to_id.reserve(j.size());
  for (auto it = j.begin(); it != j.end(); ++it) {
    const uint64_t id = as_uint(it.value(), path + "[\"" + it.key() + "\"]");
    // Ids index dense tables; a far larger id than entries is a corrupt file, not a vocabulary.
    if (id > 16 * static_cast<uint64_t>(j.size()) + 1024) {
      fail_file(path + "[\"" + it.key() + "\"]", "id " + std::to_string(id) +
                                                     " is implausibly large for a vocabulary of " +
                                                     std::to_string(j.size()) + " tokens");
    }
    v.add(it.key(), static_cast<int32_t>(id));
  }
  return v;
}

}  // namespace kpt::tok
