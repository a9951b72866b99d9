// Internal pieces of the tokenizer pipeline (normalizer -> pre-tokenizer -> model ->
// post-processor, decoder), mirroring Hugging Face `tokenizers` so that each piece can be
// checked against its Rust counterpart line by line.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "kpt/status.h"
#include "kpt/tokenizer.h"

namespace kpt::tok {

using Json = nlohmann::json;

// Where a byte of normalized text came from in the input: [start, end) in input bytes.
struct Align {
  uint32_t start = 0;
  uint32_t end = 0;
};

// Normalized text with one Align per byte (the NormalizedString of HF without the copy of the
// original). Every pipeline stage appends to one arena per encode call instead of allocating a
// string per piece.
struct AlignedText {
  std::string text;
  std::vector<Align> align;

  void clear() {
    text.clear();
    align.clear();
  }
  size_t size() const { return text.size(); }
  void push_char(char32_t c, Align a);
  void push_bytes(std::string_view bytes, Align a);
  // Copies text[begin, end) of `other` with its alignments.
  void append_range(const AlignedText& other, size_t begin, size_t end);
};

// A pre-token: [begin, end) in the arena. added_id >= 0 marks an added token that is already
// final and that later stages skip (HF Split with tokens = Some).
struct Piece {
  uint32_t begin = 0;
  uint32_t end = 0;
  int32_t added_id = -1;
};

struct PreTokenized {
  AlignedText arena;
  std::vector<Piece> pieces;
  std::vector<Piece> scratch;  // reused by split_pieces
  AlignedText transform;       // reused output buffer of normalizers and transforms

  std::string_view view(const Piece& p) const {
    return std::string_view(arena.text).substr(p.begin, p.end - p.begin);
  }
  // Moves `transform` to the end of the arena and returns its range.
  Piece commit_transform();
};

// Replaces every piece not yet tokenized with what fn(piece, out) pushes to `out`, dropping
// empty pieces (HF PreTokenizedString::split). fn may append to the arena.
template <class Fn>
void split_pieces(PreTokenized& pt, Fn&& fn) {
  pt.scratch.clear();
  for (size_t i = 0; i < pt.pieces.size(); ++i) {
    const Piece p = pt.pieces[i];
    if (p.added_id >= 0) {
      pt.scratch.push_back(p);
      continue;
    }
    const size_t first = pt.scratch.size();
    fn(p, pt.scratch);
    size_t kept = first;
    for (size_t j = first; j < pt.scratch.size(); ++j) {
      if (pt.scratch[j].end > pt.scratch[j].begin) pt.scratch[kept++] = pt.scratch[j];
    }
    pt.scratch.resize(kept);
  }
  pt.pieces.swap(pt.scratch);
}

// ---- Pattern matching shared by Split, Replace and the char-class splitters ----

// A run of text that is (is_match) or is not a match; a list of them covers the whole text,
// as HF Pattern::find_matches returns.
struct Span {
  uint32_t begin;
  uint32_t end;
  bool is_match;
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Turns spans over piece `p` into sub-pieces according to `behavior` (HF NormalizedString::split).
void split_by_spans(const std::vector<Span>& spans, SplitBehavior behavior, const Piece& p,
                    std::vector<Piece>& out);

SplitBehavior parse_split_behavior(const Json& j, const std::string& path);

// PCRE2 (JIT, UTF + UCP) regex that reproduces Oniguruma's matching of the patterns found in
// tokenizer.json files. Immutable and shareable between threads.
class Regex {
 public:
  // Throws kpt::Error(kInvalidFile) naming `path` when the pattern does not compile.
  Regex(std::string_view pattern, const std::string& path);
  static Regex literal(std::string_view text, const std::string& path);

  // Appends the spans of `text` (HF find_matches: empty text gives one non-match span).
  void find_spans(std::string_view text, std::vector<Span>& out) const;
  // Appends the [begin, end) of each match, Oniguruma find_iter order.
  void find_all(std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& out) const;

 private:
  std::shared_ptr<void> code_;
};

// ---- Pipeline interfaces ----

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Writes the normalized form of `text` (with alignments `align`) to `out`, which is empty on
  // entry. Returns false, leaving `out` untouched, when the text is unchanged.
  virtual bool normalize(std::string_view text, const Align* align, AlignedText& out) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void pre_tokenize(PreTokenized& pt) const = 0;
};

struct Token {
  int32_t id;
  uint32_t begin;  // byte offsets in the pre-token the model was given
  uint32_t end;
  // The token's string is the covered text rather than the vocabulary entry (Unigram's fused
  // unknown pieces).
  bool text_is_value = false;
};

// Per-thread mutable state of a model (e.g. the BPE word cache); models themselves are const.
class ModelState {
 public:
  virtual ~ModelState() = default;
};

class Model {
 public:
  virtual ~Model() = default;
  // Appends the tokens of one pre-token (never empty).
  virtual void tokenize(std::string_view text, ModelState* state,
                        std::vector<Token>& out) const = 0;
  virtual std::unique_ptr<ModelState> make_state() const { return nullptr; }
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  // nullptr when the id has no token.
  virtual const std::string* id_to_token(int32_t id) const = 0;
  virtual size_t vocab_size() const = 0;
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual size_t added_tokens(bool is_pair) const = 0;
  // `encodings` holds the sequence and, for a pair, the second one; the result is merged by
  // the caller (HF PostProcessor::process_encodings).
  virtual void process_encodings(std::vector<Encoding>& encodings,
                                 bool add_special_tokens) const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// ---- Factories from tokenizer.json; `path` is the JSON path used in error messages ----

std::unique_ptr<Normalizer> make_normalizer(const Json& j, const std::string& path);
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, const std::string& path);
std::unique_ptr<Model> make_model(const Json& j, const std::string& path);
std::unique_ptr<PostProcessor> make_post_processor(const Json& j, const std::string& path);
std::unique_ptr<Decoder> make_decoder(const Json& j, const std::string& path);

std::unique_ptr<Model> make_bpe(const Json& j, const std::string& path);
std::unique_ptr<Model> make_wordpiece(const Json& j, const std::string& path);
std::unique_ptr<Model> make_wordlevel(const Json& j, const std::string& path);
std::unique_ptr<Model> make_unigram(const Json& j, const std::string& path);

// The byte <-> printable char table of GPT-2's byte-level BPE.
const char32_t* byte_to_char_table();  // [256]
// -1 when the char is not one of the 256.
int char_to_byte(char32_t c);

// Applies ByteLevel / RoBERTa offset trimming (HF byte_level::process_offsets).
void trim_byte_level_offsets(Encoding& e, bool add_prefix_space);

// Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes U+FFFD.
std::string utf8_lossy(std::string_view bytes);

[[noreturn]] void fail_file(const std::string& path, const std::string& what);

}  // namespace kpt::tok
