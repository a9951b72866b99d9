// Hugging Face tokenizer.json-compatible tokenizer: the same ids, type ids, special-token masks
// and decoded text as the Rust `tokenizers` library, for BPE (byte-level and SentencePiece
// style), WordPiece, WordLevel and Unigram models. See docs/tokenizer.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kpt {

// The result of encoding one sequence (or a pair), all vectors of the same length.
struct Encoding {
  std::vector<int64_t> ids;
  std::vector<int64_t> type_ids;
  std::vector<int64_t> attention_mask;       // 0 for padding
  std::vector<int64_t> special_tokens_mask;  // 1 for tokens added by post-processing/padding
  std::vector<std::string> tokens;
  // Byte offsets [begin, end) into the input string the token came from ((0, 0) for added
  // special tokens and padding). For a pair, offsets of the second sequence index the second
  // string.
  std::vector<std::pair<size_t, size_t>> offsets;

  size_t size() const { return ids.size(); }
};

enum class TruncationStrategy { kLongestFirst, kOnlyFirst, kOnlySecond };
enum class Direction { kRight, kLeft };

struct TruncationOptions {
  size_t max_length = 512;  // counts the special tokens the post-processor adds
  TruncationStrategy strategy = TruncationStrategy::kLongestFirst;
  Direction direction = Direction::kRight;
};

struct PaddingOptions {
  std::optional<size_t> fixed_length;  // nullopt: pad a batch to its longest encoding
  size_t pad_to_multiple_of = 0;       // 0: no rounding
  Direction direction = Direction::kRight;
  int64_t pad_id = 0;
  int64_t pad_type_id = 0;
  std::string pad_token = "[PAD]";
};

class Tokenizer {
 public:
  // Both throw kpt::Error: kNotFound/kIo for an unreadable file, kInvalidFile (with the JSON path
  // of the offending field) for a malformed one, kUnsupported for valid but unsupported pieces.
  static Tokenizer from_file(const std::string& path);
  static Tokenizer from_json(std::string_view json_text);

  Tokenizer(const Tokenizer&);
  Tokenizer& operator=(const Tokenizer&);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // `text` must be valid UTF-8 (kInvalidArgument otherwise). Thread-safe: one Tokenizer may
  // encode from many threads at once.
  Encoding encode(std::string_view text, bool add_special_tokens = true) const;
  Encoding encode_pair(std::string_view first, std::string_view second,
                       bool add_special_tokens = true) const;
  // Applies batch padding (PaddingOptions::fixed_length == nullopt) across the batch.
  std::vector<Encoding> encode_batch(const std::vector<std::string>& texts,
                                     bool add_special_tokens = true) const;

  // Throws kOutOfRange for an id that names no token.
  std::string decode(std::span<const int64_t> ids, bool skip_special_tokens = true) const;

  std::optional<int64_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(int64_t id) const;
  int64_t vocab_size(bool with_added_tokens = true) const;

  // Truncation and padding start as the tokenizer.json says; these override it.
  void set_truncation(std::optional<TruncationOptions> options);
  void set_padding(std::optional<PaddingOptions> options);
  const std::optional<TruncationOptions>& truncation() const;
  const std::optional<PaddingOptions>& padding() const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl);
  Encoding post_process(Encoding first, std::optional<Encoding> second,
                        bool add_special_tokens) const;

  // The loaded pipeline is immutable and shared between copies; truncation and padding are
  // per copy, so a copy can be reconfigured without touching the others.
  std::shared_ptr<const Impl> impl_;
  std::optional<TruncationOptions> truncation_;
  std::optional<PaddingOptions> padding_;
};

}  // namespace kpt
