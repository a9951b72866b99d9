// UTF-8 and Unicode properties as the Rust crates behind HF `tokenizers` define them
// (char::is_whitespace, unicode_categories, regex's \w), computed with utf8proc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tokenizer/internal.h"

namespace kpt::tok::uni {

// Length of the UTF-8 sequence that starts with lead byte `b` (1 for continuation bytes, so
// that loops over invalid input still advance).
inline uint32_t utf8_len(unsigned char b) {
  if (b < 0x80) return 1;
  if (b < 0xE0) return b < 0xC0 ? 1 : 2;
  return b < 0xF0 ? 3 : 4;
}

// Decodes the code point at s[0..]; the input is valid UTF-8 (checked at the API boundary).
inline char32_t decode_utf8(const char* p, uint32_t* len) {
  const auto* s = reinterpret_cast<const unsigned char*>(p);
  const unsigned char b = s[0];
  if (b < 0x80) {
    *len = 1;
    return b;
  }
  if (b < 0xE0) {
    *len = 2;
    return (char32_t(b & 0x1F) << 6) | (s[1] & 0x3F);
  }
  if (b < 0xF0) {
    *len = 3;
    return (char32_t(b & 0x0F) << 12) | (char32_t(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
  }
  *len = 4;
  return (char32_t(b & 0x07) << 18) | (char32_t(s[1] & 0x3F) << 12) | (char32_t(s[2] & 0x3F) << 6) |
         (s[3] & 0x3F);
}

// Writes the UTF-8 form of `c` to out (4 bytes room) and returns its length.
inline uint32_t encode_utf8(char32_t c, char* out) {
  if (c < 0x80) {
    out[0] = static_cast<char>(c);
    return 1;
  }
  if (c < 0x800) {
    out[0] = static_cast<char>(0xC0 | (c >> 6));
    out[1] = static_cast<char>(0x80 | (c & 0x3F));
    return 2;
  }
  if (c < 0x10000) {
    out[0] = static_cast<char>(0xE0 | (c >> 12));
    out[1] = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out[2] = static_cast<char>(0x80 | (c & 0x3F));
    return 3;
  }
  out[0] = static_cast<char>(0xF0 | (c >> 18));
  out[1] = static_cast<char>(0x80 | ((c >> 12) & 0x3F));
  out[2] = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
  out[3] = static_cast<char>(0x80 | (c & 0x3F));
  return 4;
}

inline std::string to_utf8(char32_t c) {
  char buf[4];
  return std::string(buf, encode_utf8(c, buf));
}

// Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF). Returns the byte
// offset of the first invalid sequence, or npos.
size_t find_invalid_utf8(std::string_view s);

size_t count_chars(std::string_view s);

bool is_whitespace(char32_t c);       // Rust char::is_whitespace (White_Space)
bool is_numeric(char32_t c);          // Rust char::is_numeric (Nd, Nl, No)
bool is_punctuation(char32_t c);      // ASCII punctuation or P* (HF is_bert_punc / is_punc)
bool is_word(char32_t c);             // Rust regex \w
bool is_other(char32_t c);            // unicode_categories is_other (Cc, Cf, Cn, Co, Cs)
bool is_mark_nonspacing(char32_t c);  // Mn
bool is_combining_mark(char32_t c);   // M*
bool is_chinese(char32_t c);          // BERT's CJK ranges

// Rust char::to_lowercase: writes 1 or 2 code points to out and returns the count.
int to_lowercase(char32_t c, char32_t out[2]);

enum class NormForm { kNFC, kNFD, kNFKC, kNFKD };

// Unicode normalization. Output chars of a composed or decomposed cluster take the alignment of
// the input char at the same position in the cluster (HF aligns the same way up to clusters).
// Returns false (out untouched) when the text is unchanged.
bool normalize(NormForm form, std::string_view text, const Align* align, AlignedText& out);

// Whole-string normalization straight from utf8proc: the reference the cluster-wise version is
// tested against.
std::string normalize_reference(NormForm form, std::string_view text);

}  // namespace kpt::tok::uni
