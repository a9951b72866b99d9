#include "tokenizer/unicode.h"

#include <algorithm>
#include <cstdlib>
#include <vector>

#include <utf8proc.h>

namespace kpt::tok {

void AlignedText::push_char(char32_t c, Align a) {
  char buf[4];
  const uint32_t n = uni::encode_utf8(c, buf);
  text.append(buf, n);
  align.insert(align.end(), n, a);
}

void AlignedText::push_bytes(std::string_view bytes, Align a) {
  text.append(bytes);
  align.insert(align.end(), bytes.size(), a);
}

void AlignedText::append_range(const AlignedText& other, size_t begin, size_t end) {
  text.append(other.text, begin, end - begin);
  align.insert(align.end(), other.align.begin() + static_cast<ptrdiff_t>(begin),
               other.align.begin() + static_cast<ptrdiff_t>(end));
}

namespace uni {

size_t find_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b = p[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    char32_t min;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
      min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      min = 0x10000;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
    }
    uint32_t l;
    const char32_t c = decode_utf8(s.data() + i, &l);
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

size_t count_chars(std::string_view s) {
  size_t n = 0;
  for (unsigned char b : s) n += (b & 0xC0) != 0x80;
  return n;
}

static utf8proc_category_t category(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

bool is_whitespace(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  switch (c) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool is_numeric(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  const auto cat = category(c);
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

bool is_punctuation(char32_t c) {
  if (c < 0x80) {
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
  }
  const auto cat = category(c);
  return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

bool is_word(char32_t c) {
  if (c < 0x80) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  }
  switch (category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      break;
  }
  // Join_Control and the symbols that are Other_Alphabetic (circled and squared letters).
  return c == 0x200C || c == 0x200D || (c >= 0x24B6 && c <= 0x24E9) ||
         (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
         (c >= 0x1F170 && c <= 0x1F189);
}

bool is_other(char32_t c) {
  switch (category(c)) {
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
      return true;
    default:
      return false;
  }
}

bool is_mark_nonspacing(char32_t c) {
  return c >= 0x80 && category(c) == UTF8PROC_CATEGORY_MN;
}

bool is_combining_mark(char32_t c) {
  if (c < 0x80) return false;
  const auto cat = category(c);
  return cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_MC || cat == UTF8PROC_CATEGORY_ME;
}

bool is_chinese(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

int to_lowercase(char32_t c, char32_t out[2]) {
  if (c < 0x80) {
    out[0] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
    return 1;
  }
  // The one unconditional multi-char lowercase mapping of SpecialCasing.txt.
  if (c == 0x130) {
    out[0] = 'i';
    out[1] = 0x307;
    return 2;
  }
  out[0] = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
  return 1;
}

static utf8proc_option_t options_for(NormForm form) {
  switch (form) {
    case NormForm::kNFC:
      return utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    case NormForm::kNFD:
      return utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
    case NormForm::kNFKC:
      return utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
    case NormForm::kNFKD:
      return utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  }
  return utf8proc_option_t(0);
}

static bool is_mark_category(utf8proc_propval_t cat) {
  return cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_MC || cat == UTF8PROC_CATEGORY_ME;
}

// True when normalization never looks across a boundary placed before `c`: c and the first
// char of its decomposition are starters that cannot be the second half of a composition.
// Conservative (a false "no" only makes a cluster longer).
static bool starts_cluster(char32_t c, utf8proc_option_t options) {
  if (c < 0x80) return true;
  const utf8proc_property_t* prop = utf8proc_get_property(static_cast<utf8proc_int32_t>(c));
  if (prop->combining_class != 0 || is_mark_category(prop->category)) return false;
  if (c >= 0x1160 && c <= 0x11FF) return false;  // Hangul medial vowels and final consonants
  utf8proc_int32_t first[8];
  int last_boundclass = 0;
  const auto decompose_only =
      static_cast<utf8proc_option_t>((options | UTF8PROC_DECOMPOSE) & ~UTF8PROC_COMPOSE);
  const auto n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), first, 8, decompose_only,
                                         &last_boundclass);
  if (n <= 0) return false;
  if (first[0] == static_cast<utf8proc_int32_t>(c)) return true;
  const utf8proc_property_t* fp = utf8proc_get_property(first[0]);
  return fp->combining_class == 0 && !is_mark_category(fp->category) &&
         !(first[0] >= 0x1160 && first[0] <= 0x11FF);
}

bool normalize(NormForm form, std::string_view text, const Align* align, AlignedText& out) {
  size_t first_non_ascii = 0;
  while (first_non_ascii < text.size() &&
         static_cast<unsigned char>(text[first_non_ascii]) < 0x80) {
    ++first_non_ascii;
  }
  if (first_non_ascii == text.size()) return false;  // ASCII is invariant under all four forms

  const utf8proc_option_t options = options_for(form);
  const bool compose = form == NormForm::kNFC || form == NormForm::kNFKC;
  thread_local std::vector<utf8proc_int32_t> buffer;
  thread_local std::vector<uint32_t> char_starts;
  thread_local std::vector<std::pair<utf8proc_int32_t, size_t>> decomposed;  // (cp, source char)
  thread_local std::vector<bool> used;
  const auto decompose_options =
      static_cast<utf8proc_option_t>((options | UTF8PROC_DECOMPOSE) & ~UTF8PROC_COMPOSE);
  const auto canonical_decompose =
      static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
  if (buffer.size() < 64) buffer.resize(64);

  out.text.reserve(text.size() + text.size() / 4);
  out.align.reserve(text.size() + text.size() / 4);
  // The ASCII prefix is copied as is; a cluster may still start at its last char (a base
  // letter followed by a combining mark), so leave that one to the loop.
  size_t i = first_non_ascii > 0 ? first_non_ascii - 1 : 0;
  out.text.append(text.data(), i);
  out.align.insert(out.align.end(), align, align + i);
  while (i < text.size()) {
    const size_t begin = i;
    char_starts.clear();
    uint32_t len;
    decode_utf8(text.data() + i, &len);
    char_starts.push_back(static_cast<uint32_t>(i));
    i += len;
    while (i < text.size()) {
      const char32_t c = decode_utf8(text.data() + i, &len);
      if (starts_cluster(c, options)) break;
      char_starts.push_back(static_cast<uint32_t>(i));
      i += len;
    }
    if (i - begin == 1) {  // a lone ASCII char
      out.text.push_back(text[begin]);
      out.align.push_back(align[begin]);
      continue;
    }
    // Decompose char by char to know which input char each code point comes from, then
    // reorder and compose; output chars take the alignment of their source char (a composed
    // char: its starter's), which is what HF's alignments give.
    decomposed.clear();
    for (size_t c = 0; c < char_starts.size(); ++c) {
      const char32_t cp = decode_utf8(text.data() + char_starts[c], &len);
      utf8proc_int32_t parts[32];
      int boundclass = 0;
      auto m = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), parts, 32,
                                       decompose_options, &boundclass);
      if (m < 0 || m > 32) {  // cannot happen for valid code points; keep the char as is
        parts[0] = static_cast<utf8proc_int32_t>(cp);
        m = 1;
      }
      for (utf8proc_ssize_t k = 0; k < m; ++k) decomposed.push_back({parts[k], c});
    }
    // Canonical ordering: a stable sort of each run of non-starters by combining class.
    auto ccc = [](utf8proc_int32_t cp) { return utf8proc_get_property(cp)->combining_class; };
    for (size_t a = 1; a < decomposed.size(); ++a) {
      for (size_t b = a; b > 0; --b) {
        const auto c1 = ccc(decomposed[b - 1].first), c2 = ccc(decomposed[b].first);
        if (c2 == 0 || c1 <= c2) break;
        std::swap(decomposed[b - 1], decomposed[b]);
      }
    }
    if (!compose) {
      for (const auto& [cp, c] : decomposed) {
        out.push_char(static_cast<char32_t>(cp), align[char_starts[c]]);
      }
      continue;
    }
    buffer.resize(std::max(buffer.size(), decomposed.size()));
    for (size_t k = 0; k < decomposed.size(); ++k) buffer[k] = decomposed[k].first;
    const auto n = utf8proc_normalize_utf32(
        buffer.data(), static_cast<utf8proc_ssize_t>(decomposed.size()), options);
    // Each output char consumes the first unused decomposed code points it is made of.
    used.assign(decomposed.size(), false);
    for (utf8proc_ssize_t k = 0; k < n; ++k) {
      const utf8proc_int32_t cp = buffer[static_cast<size_t>(k)];
      utf8proc_int32_t parts[32];
      int boundclass = 0;
      auto m = utf8proc_decompose_char(cp, parts, 32, canonical_decompose, &boundclass);
      if (m < 1 || m > 32) {
        parts[0] = cp;
        m = 1;
      }
      size_t source = decomposed.empty() ? 0 : decomposed[0].second;
      bool found_first = false;
      size_t from = 0;
      for (utf8proc_ssize_t p = 0; p < m; ++p) {
        for (size_t d = from; d < decomposed.size(); ++d) {
          if (!used[d] && decomposed[d].first == parts[p]) {
            used[d] = true;
            if (!found_first) {
              source = decomposed[d].second;
              found_first = true;
            }
            from = d + 1;
            break;
          }
        }
      }
      out.push_char(static_cast<char32_t>(cp), align[char_starts[source]]);
    }
  }
  if (out.text == text) {
    out.clear();
    return false;
  }
  return true;
}

std::string normalize_reference(NormForm form, std::string_view text) {
  utf8proc_uint8_t* dst = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                              static_cast<utf8proc_ssize_t>(text.size()), &dst, options_for(form));
  if (n < 0) return std::string(text);
  std::string result(reinterpret_cast<const char*>(dst), static_cast<size_t>(n));
  std::free(dst);
  return result;
}

}  // namespace uni
}  // namespace kpt::tok
