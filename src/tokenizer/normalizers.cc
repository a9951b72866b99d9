// Normalizers of tokenizer.json (HF tokenizers/src/normalizers). Each writes the new text and,
// per byte, the input range it came from.
#include <utility>

#include "tokenizer/json_util.h"
#include "tokenizer/unicode.h"

namespace kpt::tok {
namespace {

// Calls fn(c, align, out) for each char; fn pushes the replacement and returns whether it
// differs from c. Returns false (out cleared) when nothing changed.
template <class Fn>
bool map_chars(std::string_view text, const Align* align, AlignedText& out, Fn&& fn) {
  out.text.reserve(text.size());
  out.align.reserve(text.size());
  bool changed = false;
  uint32_t len;
  for (size_t i = 0; i < text.size(); i += len) {
    const char32_t c = uni::decode_utf8(text.data() + i, &len);
    changed |= fn(c, align[i], out);
  }
  if (!changed) out.clear();
  return changed;
}

bool lowercase(std::string_view text, const Align* align, AlignedText& out) {
  return map_chars(text, align, out, [](char32_t c, Align a, AlignedText& o) {
    char32_t lower[2];
    const int n = uni::to_lowercase(c, lower);
    for (int k = 0; k < n; ++k) o.push_char(lower[k], a);
    return n != 1 || lower[0] != c;
  });
}

class BertNormalizer final : public Normalizer {
 public:
  BertNormalizer(bool clean_text, bool handle_chinese_chars, bool strip_accents, bool lowercase)
      : clean_text_(clean_text),
        handle_chinese_chars_(handle_chinese_chars),
        strip_accents_(strip_accents),
        lowercase_(lowercase) {}

  bool normalize(std::string_view text, const Align* align, AlignedText& out) const override {
    // Same order as HF: clean, CJK spacing, NFD + drop Mn, lowercase. Stages run through two
    // buffers; most text changes in at most one or two of them.
    AlignedText a, b;
    std::string_view cur = text;
    const Align* cur_align = align;
    bool changed = false;
    auto advance = [&](AlignedText& produced) {
      cur = produced.text;
      cur_align = produced.align.data();
      changed = true;
    };
    if ((clean_text_ || handle_chinese_chars_) &&
        map_chars(cur, cur_align, a, [this](char32_t c, Align al, AlignedText& o) {
          if (clean_text_) {
            if (c == 0 || c == 0xFFFD ||
                (c != '\t' && c != '\n' && c != '\r' && uni::is_other(c))) {
              return true;  // dropped
            }
            if (c != ' ' && (c == '\t' || c == '\n' || c == '\r' || uni::is_whitespace(c))) {
              o.push_char(' ', al);
              return true;
            }
          }
          if (handle_chinese_chars_ && uni::is_chinese(c)) {
            o.push_char(' ', al);
            o.push_char(c, al);
            o.push_char(' ', al);
            return true;
          }
          o.push_char(c, al);
          return false;
        })) {
      advance(a);
    }
    if (strip_accents_) {
      AlignedText& dst = cur.data() == a.text.data() ? b : a;
      AlignedText decomposed;
      std::string_view src = cur;
      const Align* src_align = cur_align;
      if (uni::normalize(uni::NormForm::kNFD, cur, cur_align, decomposed)) {
        src = decomposed.text;
        src_align = decomposed.align.data();
      }
      const bool dropped = map_chars(src, src_align, dst, [](char32_t c, Align al, AlignedText& o) {
        if (uni::is_mark_nonspacing(c)) return true;
        o.push_char(c, al);
        return false;
      });
      if (dropped) {
        advance(dst);
      } else if (src.data() != cur.data()) {
        dst = std::move(decomposed);
        advance(dst);
      }
    }
    if (lowercase_) {
      AlignedText& dst = cur.data() == a.text.data() ? b : a;
      dst.clear();
      if (tok::lowercase(cur, cur_align, dst)) advance(dst);
    }
    if (!changed) return false;
    out.text.assign(cur);
    out.align.assign(cur_align, cur_align + cur.size());
    return true;
  }

 private:
  bool clean_text_, handle_chinese_chars_, strip_accents_, lowercase_;
};

class Lowercase final : public Normalizer {
 public:
  bool normalize(std::string_view text, const Align* align, AlignedText& out) const override {
    return lowercase(text, align, out);
  }
};

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(uni::NormForm form) : form_(form) {}
  bool normalize(std::string_view text, const Align* align, AlignedText& out) const override {
    return uni::normalize(form_, text, align, out);
  }

 private:
  uni::NormForm form_;
};

class StripAccents final : public Normalizer {
 public:
  bool normalize(std::string_view text, const Align* align, AlignedText& out) const override {
    return map_chars(text, align, out, [](char32_t c, Align a, AlignedText& o) {
      if (uni::is_combining_mark(c)) return true;
      o.push_char(c, a);
      return false;
    });
  }
};

class Strip final : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  bool normalize(std::string_view text, const Align* align, AlignedText& out) const override {
    size_t begin = 0, end = text.size();
    uint32_t len;
    if (left_) {
      while (begin < end && uni::is_whitespace(uni::decode_utf8(text.data() + begin, &len))) {
        begin += len;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        if (!uni::is_whitespace(uni::decode_utf8(text.data() + start, &len))) break;
        end = start;
      }
    }
    if (begin == 0 && end == text.size()) return false;
    out.text.assign(text.substr(begin, end - begin));
    out.align.assign(align + begin, align + end);
    return true;
  }

 private:
  bool left_, right_;
};

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  bool normalize(std::string_view text, const Align* align, AlignedText& out) const override {
    if (text.empty() || prefix_.empty()) return false;
    out.push_bytes(prefix_, align[0]);  // HF aligns the prefix with the first char
    out.text.append(text);
    out.align.insert(out.align.end(), align, align + text.size());
    return true;
  }

 private:
  std::string prefix_;
};

class Replace final : public Normalizer {
 public:
  Replace(Regex regex, std::string content)
      : regex_(std::move(regex)), content_(std::move(content)) {}
  bool normalize(std::string_view text, const Align* align, AlignedText& out) const override {
    thread_local std::vector<std::pair<uint32_t, uint32_t>> matches;
    matches.clear();
    regex_.find_all(text, matches);
    if (matches.empty()) return false;
    size_t last = 0;
    for (const auto& [s, e] : matches) {
      out.text.append(text, last, s - last);
      out.align.insert(out.align.end(), align + last, align + s);
      // HF gives inserted chars the alignment of the byte before them: the match's last byte.
      const Align a = e > 0 ? align[e - 1] : Align{align[0].start, align[0].start};
      out.push_bytes(content_, a);
      last = e;
    }
    out.text.append(text, last);
    out.align.insert(out.align.end(), align + last, align + text.size());
    return true;
  }

 private:
  Regex regex_;
  std::string content_;
};

class Nmt final : public Normalizer {
 public:
  bool normalize(std::string_view text, const Align* align, AlignedText& out) const override {
    return map_chars(text, align, out, [](char32_t c, Align a, AlignedText& o) {
      if ((c >= 0x01 && c <= 0x08) || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
          c == 0x8F || c == 0x9F) {
        return true;
      }
      const bool space = c == 0x09 || c == 0x0A || c == 0x0C || c == 0x0D || c == 0x1680 ||
                         (c >= 0x200B && c <= 0x200F) || c == 0x2028 || c == 0x2029 ||
                         c == 0x2581 || c == 0xFEFF || c == 0xFFFD;
      o.push_char(space ? U' ' : c, a);
      return space;
    });
  }
};

class ByteLevelNormalizer final : public Normalizer {
 public:
  bool normalize(std::string_view text, const Align* align, AlignedText& out) const override {
    if (text.empty()) return false;
    const char32_t* table = byte_to_char_table();
    for (size_t i = 0; i < text.size(); ++i) {
      out.push_char(table[static_cast<unsigned char>(text[i])], align[i]);
    }
    return out.text != text;
  }
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> items)
      : items_(std::move(items)) {}
  bool normalize(std::string_view text, const Align* align, AlignedText& out) const override {
    AlignedText bufs[2];
    int current = -1;  // -1: still the input
    for (const auto& n : items_) {
      const int next = current == 0 ? 1 : 0;
      bufs[next].clear();
      const std::string_view src = current < 0 ? text : std::string_view(bufs[current].text);
      const Align* src_align = current < 0 ? align : bufs[current].align.data();
      if (n->normalize(src, src_align, bufs[next])) current = next;
    }
    if (current < 0) return false;
    out = std::move(bufs[current]);
    return true;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> items_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const Json& j, const std::string& path) {
  const std::string type = type_of(j, path);
  if (type == "BertNormalizer" || type == "Bert") {
    const bool lower = get_bool(j, "lowercase", path, true);
    const Json* strip = find_field(j, "strip_accents");
    const bool strip_accents = strip ? as_bool(*strip, child_path(path, "strip_accents")) : lower;
    return std::make_unique<BertNormalizer>(get_bool(j, "clean_text", path, true),
                                            get_bool(j, "handle_chinese_chars", path, true),
                                            strip_accents, lower);
  }
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(uni::NormForm::kNFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(uni::NormForm::kNFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(uni::NormForm::kNFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(uni::NormForm::kNFKD);
  if (type == "StripAccents") return std::make_unique<StripAccents>();
  if (type == "Strip") {
    return std::make_unique<Strip>(get_required_bool(j, "strip_left", path),
                                   get_required_bool(j, "strip_right", path));
  }
  if (type == "Prepend") return std::make_unique<Prepend>(get_string(j, "prepend", path));
  if (type == "Replace") {
    const Json& pattern = require_field(j, "pattern", path);
    const std::string ppath = child_path(path, "pattern");
    std::string content = get_string(j, "content", path);
    if (const Json* s = pattern.is_object() ? find_field(pattern, "String") : nullptr) {
      return std::make_unique<Replace>(Regex::literal(as_string(*s, ppath + ".String"), ppath),
                                       std::move(content));
    }
    if (const Json* r = pattern.is_object() ? find_field(pattern, "Regex") : nullptr) {
      return std::make_unique<Replace>(Regex(as_string(*r, ppath + ".Regex"), ppath),
                                       std::move(content));
    }
    fail_file(ppath, "expected {\"String\": ...} or {\"Regex\": ...}, got " + pattern.dump());
  }
  if (type == "Nmt") return std::make_unique<Nmt>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  if (type == "Sequence") {
    const Json& list = require_field(j, "normalizers", path);
    const std::string lpath = child_path(path, "normalizers");
    if (!list.is_array()) fail_file(lpath, "expected an array, got " + json_kind(list));
    std::vector<std::unique_ptr<Normalizer>> items;
    for (size_t i = 0; i < list.size(); ++i) {
      items.push_back(make_normalizer(list[i], lpath + "[" + std::to_string(i) + "]"));
    }
    return std::make_unique<SequenceNormalizer>(std::move(items));
  }
  if (type == "Precompiled") {
    throw Error(ErrorCode::kUnsupported,
                "tokenizer.json: " + path +
                    ": the Precompiled (SentencePiece charsmap) normalizer is not supported");
  }
  fail_file(child_path(path, "type"), "unknown normalizer type '" + type + "'");
}

}  // namespace kpt::tok
