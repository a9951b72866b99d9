// Decoders of tokenizer.json (HF tokenizers/src/decoders): turn tokens back into text.
#include <array>

#include <nlohmann/json.hpp>

#include "tokenizer/json_util.h"
#include "tokenizer/unicode.h"

namespace kpt::tok {
namespace {

struct ByteTables {
  std::array<char32_t, 256> to_char{};
  std::array<int16_t, 0x144> to_byte{};  // every mapped char is below U+0144
  ByteTables() {
    to_byte.fill(-1);
    // GPT-2: printable Latin-1 bytes map to themselves, the rest to U+0100 onwards.
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      to_char[b] = printable ? static_cast<char32_t>(b) : next++;
      to_byte[to_char[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteTables& byte_tables() {
  static const ByteTables tables;
  return tables;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out.append(to);
  }
  if (pos == 0) return;
  out.append(s, pos);
  s = std::move(out);
}

// HF decoders::wordpiece::cleanup.
void cleanup(std::string& s) {
  replace_all(s, " .", ".");
  replace_all(s, " ?", "?");
  replace_all(s, " !", "!");
  replace_all(s, " ,", ",");
  replace_all(s, " ' ", "'");
  replace_all(s, " n't", "n't");
  replace_all(s, " 'm", "'m");
  replace_all(s, " do not", " don't");
  replace_all(s, " 's", "'s");
  replace_all(s, " 've", "'ve");
  replace_all(s, " 're", "'re");
}

class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      const size_t mark = bytes.size();
      bool all = true;
      uint32_t len;
      for (size_t i = 0; i < t.size(); i += len) {
        const int b = char_to_byte(uni::decode_utf8(t.data() + i, &len));
        if (b < 0) {
          all = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
      }
      if (!all) {  // a token outside the byte alphabet (an added token) passes through
        bytes.resize(mark);
        bytes.append(t);
      }
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class WordPieceDecoder final : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup)
      : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      if (i != 0) {
        if (t.starts_with(prefix_)) {
          t.erase(0, prefix_.size());
        } else {
          t = " " + t;  // (t.insert(0, " ") trips a false -Wrestrict in GCC 12)
        }
      }
      if (cleanup_) cleanup(t);
    }
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, bool prepend)
      : utf8_(uni::to_utf8(replacement)), prepend_(prepend) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      // The first token's leading replacement was added by the pre-tokenizer: drop it.
      replace_all(tokens[i], utf8_, (i == 0 && prepend_) ? "" : " ");
    }
  }

 private:
  std::string utf8_;
  bool prepend_;
};

class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (uni::find_invalid_utf8(pending) == std::string_view::npos) {
        out.push_back(pending);
      } else {
        for (size_t k = 0; k < pending.size(); ++k) out.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (std::string& t : tokens) {
      int byte = -1;
      if (t.size() == 6 && t.starts_with("<0x") && t.back() == '>') {
        byte = parse_hex_byte(t[3], t[4]);
      }
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static int parse_hex_byte(char hi, char lo) {
    auto digit = [](char c) {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int h = digit(hi), l = digit(lo);
    return (h < 0 || l < 0) ? -1 : h * 16 + l;
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const auto& t : tokens) joined += t;
    tokens.assign(1, std::move(joined));
  }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop)
      : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::pair<uint32_t, char32_t>> chars;  // (byte offset, char)
    for (std::string& t : tokens) {
      chars.clear();
      uint32_t len;
      for (uint32_t i = 0; i < t.size(); i += len)
        chars.emplace_back(i, uni::decode_utf8(t.data() + i, &len));
      size_t start_cut = 0;
      for (size_t i = 0; i < std::min(start_, chars.size()) && chars[i].second == content_; ++i) {
        start_cut = i + 1;
      }
      size_t stop_cut = chars.size();
      for (size_t i = 0; i < std::min(stop_, chars.size()); ++i) {
        const size_t index = chars.size() - i - 1;
        if (chars[index].second != content_) break;
        stop_cut = index;
      }
      if (stop_cut <= start_cut) {
        t.clear();
        continue;
      }
      const size_t b = start_cut < chars.size() ? chars[start_cut].first : t.size();
      const size_t e = stop_cut < chars.size() ? chars[stop_cut].first : t.size();
      t = t.substr(b, e - b);
    }
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Regex regex, std::string content)
      : regex_(std::move(regex)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<Span> spans;
    for (std::string& t : tokens) {
      spans.clear();
      regex_.find_spans(t, spans);
      std::string out;
      for (const Span& s : spans) {
        if (s.is_match) {
          out += content_;
        } else {
          out.append(t, s.begin, s.end - s.begin);
        }
      }
      t = std::move(out);
    }
  }

 private:
  Regex regex_;
  std::string content_;
};

class CtcDecoder final : public Decoder {
 public:
  CtcDecoder(std::string pad, std::string word_delimiter, bool cleanup)
      : pad_(std::move(pad)), delimiter_(std::move(word_delimiter)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0 && tokens[i] == tokens[i - 1]) continue;  // CTC collapses repeats
      std::string t = tokens[i];
      replace_all(t, pad_, "");
      if (cleanup_) {
        cleanup(t);
        replace_all(t, delimiter_, " ");
      }
      if (!t.empty()) out.push_back(std::move(t));
    }
    tokens = std::move(out);
  }

 private:
  std::string pad_, delimiter_;
  bool cleanup_;
};

class BpeDecoder final : public Decoder {
 public:
  explicit BpeDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      replace_all(tokens[i], suffix_, i + 1 == tokens.size() ? "" : " ");
    }
  }

 private:
  std::string suffix_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> items)
      : items_(std::move(items)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& d : items_) d->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> items_;
};

Regex pattern_regex(const Json& j, const std::string& path) {
  const Json& pattern = require_field(j, "pattern", path);
  const std::string ppath = child_path(path, "pattern");
  if (const Json* s = pattern.is_object() ? find_field(pattern, "String") : nullptr) {
    return Regex::literal(as_string(*s, ppath + ".String"), ppath);
  }
  if (const Json* r = pattern.is_object() ? find_field(pattern, "Regex") : nullptr) {
    return Regex(as_string(*r, ppath + ".Regex"), ppath);
  }
  fail_file(ppath, "expected {\"String\": ...} or {\"Regex\": ...}, got " + pattern.dump());
}

}  // namespace

const char32_t* byte_to_char_table() {
  return byte_tables().to_char.data();
}

int char_to_byte(char32_t c) {
  const auto& t = byte_tables().to_byte;
  return c < t.size() ? t[c] : -1;
}

[[noreturn]] void fail_file(const std::string& path, const std::string& what) {
  throw Error(ErrorCode::kInvalidFile, "tokenizer.json: " + path + ": " + what);
}

char32_t get_char(const Json& j, std::string_view key, const std::string& path) {
  const std::string s = get_string(j, key, path);
  uint32_t len = 0;
  if (s.empty() || uni::find_invalid_utf8(s) != std::string_view::npos ||
      (uni::decode_utf8(s.data(), &len), len != s.size())) {
    fail_file(child_path(path, key), "expected a single character, got \"" + s + "\"");
  }
  return uni::decode_utf8(s.data(), &len);
}

std::string utf8_lossy(std::string_view bytes) {
  if (uni::find_invalid_utf8(bytes) == std::string_view::npos) return std::string(bytes);
  std::string out;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b = p[i];
    if (b < 0x80) {
      out.push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    // Length and allowed range of the second byte (Unicode Table 3-7); a maximal invalid
    // prefix becomes one U+FFFD, as Rust's from_utf8_lossy does.
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      need = 2;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      need = 3;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    }
    size_t k = 1;
    bool ok = need > 0;
    if (ok) {
      for (; k <= need; ++k) {
        if (i + k >= n) {
          ok = false;
          break;
        }
        const unsigned char c = p[i + k];
        const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (c < l || c > h) {
          ok = false;
          break;
        }
      }
    }
    if (ok) {
      out.append(bytes.substr(i, need + 1));
      i += need + 1;
    } else {
      out.append("\xEF\xBF\xBD");
      i += need > 0 ? k : 1;
    }
  }
  return out;
}

void trim_byte_level_offsets(Encoding& e, bool add_prefix_space) {
  const char32_t space_char = byte_to_char_table()[' '];
  for (size_t i = 0; i < e.tokens.size(); ++i) {
    const std::string& t = e.tokens[i];
    auto is_space = [&](char32_t c) { return c == space_char || uni::is_whitespace(c); };
    std::vector<char32_t> chars;
    uint32_t len;
    for (size_t k = 0; k < t.size(); k += len)
      chars.push_back(uni::decode_utf8(t.data() + k, &len));
    size_t leading = 0, trailing = 0;
    while (leading < chars.size() && is_space(chars[leading])) ++leading;
    while (trailing < chars.size() && is_space(chars[chars.size() - 1 - trailing])) ++trailing;
    if (leading == 0 && trailing == 0) continue;
    auto& [begin, end] = e.offsets[i];
    if (leading > 0) {
      const bool is_first = i == 0 || begin == 0;
      if (is_first && add_prefix_space && leading == 1) leading = 0;
      begin = std::min(begin + leading, end);
    }
    if (trailing > 0 && end >= trailing) end = std::max(end - trailing, begin);
  }
}

std::unique_ptr<Decoder> make_decoder(const Json& j, const std::string& path) {
  const std::string type = type_of(j, path);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "WordPiece") {
    return std::make_unique<WordPieceDecoder>(get_opt_string(j, "prefix", path).value_or("##"),
                                              get_bool(j, "cleanup", path, true));
  }
  if (type == "Metaspace") {
    bool prepend = true;
    if (auto s = get_opt_string(j, "prepend_scheme", path)) prepend = *s != "never";
    if (const Json* a = find_field(j, "add_prefix_space")) {
      if (!as_bool(*a, child_path(path, "add_prefix_space"))) prepend = false;
    }
    return std::make_unique<MetaspaceDecoder>(get_char(j, "replacement", path), prepend);
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    return std::make_unique<StripDecoder>(
        get_char(j, "content", path), get_uint(j, "start", path, 0), get_uint(j, "stop", path, 0));
  }
  if (type == "Replace") {
    return std::make_unique<ReplaceDecoder>(pattern_regex(j, path), get_string(j, "content", path));
  }
  if (type == "CTC") {
    return std::make_unique<CtcDecoder>(
        get_opt_string(j, "pad_token", path).value_or("<pad>"),
        get_opt_string(j, "word_delimiter_token", path).value_or("|"),
        get_bool(j, "cleanup", path, true));
  }
  if (type == "BPEDecoder") {
    return std::make_unique<BpeDecoder>(get_opt_string(j, "suffix", path).value_or("</w>"));
  }
  if (type == "Sequence") {
    const Json& list = require_field(j, "decoders", path);
    const std::string lpath = child_path(path, "decoders");
    if (!list.is_array()) fail_file(lpath, "expected an array, got " + json_kind(list));
    std::vector<std::unique_ptr<Decoder>> items;
    for (size_t i = 0; i < list.size(); ++i) {
      items.push_back(make_decoder(list[i], lpath + "[" + std::to_string(i) + "]"));
    }
    return std::make_unique<SequenceDecoder>(std::move(items));
  }
  fail_file(child_path(path, "type"), "unknown decoder type '" + type + "'");
}

}  // namespace kpt::tok
