#include "serve/template/lexer.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include <fmt/format.h>

#include "kpt/status.h"
#include "serve/template/value.h"

namespace kpt::jinja {

void throw_syntax_error(int line, int col, const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("template syntax error at {}:{}: {}", line, col, message));
}

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c);
}

class Lexer {
 public:
  Lexer(std::string source, const Options& options) : src_(std::move(source)), opt_(options) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  std::vector<Token> run() {
    bool line_starting = true;
    while (pos_ < src_.size()) {
      size_t start = find_tag(pos_);
      std::string text = src_.substr(pos_, start - pos_);
      if (start == src_.size()) {
        push_text(std::move(text));
        break;
      }
      char kind = src_[start + 1];  // '{', '%' or '#'
      char sign = start + 2 < src_.size() ? src_[start + 2] : '\0';
      if (sign == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (opt_.lstrip_blocks && kind != '{' && sign != '+') {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if ((l_pos > 0 || line_starting) && l_pos < text.size() &&
            std::all_of(text.begin() + static_cast<std::ptrdiff_t>(l_pos), text.end(), is_space)) {
          text.resize(l_pos);
        }
      }
      push_text(std::move(text));
      pos_ = start + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      if (kind == '#') {
        lex_comment(start);
      } else if (kind == '%' && lex_raw(start)) {
        // raw block emitted as text
      } else {
        lex_tag(start, kind);
      }
      line_starting = pos_ > 0 && src_[pos_ - 1] == '\n';
    }
    tokens_.push_back(make(TokenType::kEof, src_.size()));
    return std::move(tokens_);
  }

 private:
  Token make(TokenType type, size_t offset, std::string text = {}) const {
    Token t;
    t.type = type;
    t.text = std::move(text);
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    size_t line_index = static_cast<size_t>(it - line_starts_.begin()) - 1;
    t.line = static_cast<int>(line_index) + 1;
    t.col = static_cast<int>(offset - line_starts_[line_index]) + 1;
    return t;
  }
  [[noreturn]] void fail(size_t offset, const std::string& message) const {
    Token t = make(TokenType::kEof, offset);
    throw_syntax_error(t.line, t.col, message);
  }

  void push_text(std::string text) {
    if (text.empty()) return;
    tokens_.push_back(make(TokenType::kText, text_offset_, std::move(text)));
  }

  size_t find_tag(size_t from) {
    text_offset_ = from;
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) {
        return i;
      }
    }
    return src_.size();
  }

  // After an end tag: `-` strips all following whitespace; trim_blocks drops one newline after
  // block and comment tags unless the tag ends with `+`.
  void after_end(char sign, bool is_block) {
    if (sign == '-') {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
    } else if (sign != '+' && is_block && opt_.trim_blocks && pos_ < src_.size() &&
               src_[pos_] == '\n') {
      ++pos_;
    }
  }

  void lex_comment(size_t start) {
    size_t end = src_.find("#}", pos_);
    if (end == std::string::npos) fail(start, "missing end of comment tag '#}'");
    char sign = end > pos_ && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : '\0';
    pos_ = end + 2;
    after_end(sign, true);
  }

  // {% raw %}...{% endraw %}: the body is emitted verbatim.
  bool lex_raw(size_t start) {
    size_t p = pos_;
    while (p < src_.size() && is_space(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0 || (p + 3 < src_.size() && is_name_char(src_[p + 3]))) {
      return false;
    }
    p += 3;
    while (p < src_.size() && is_space(src_[p])) ++p;
    char sign = '\0';
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
    if (src_.compare(p, 2, "%}") != 0) fail(p, "expected '%}' after 'raw'");
    pos_ = p + 2;
    after_end(sign, true);
    // Find {%[-+]? endraw [-+]?%}
    size_t search = pos_;
    while (true) {
      size_t tag = src_.find("{%", search);
      if (tag == std::string::npos) fail(start, "missing '{% endraw %}' for this raw block");
      size_t q = tag + 2;
      char open_sign = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q] : '\0';
      if (open_sign) ++q;
      while (q < src_.size() && is_space(src_[q])) ++q;
      if (src_.compare(q, 6, "endraw") != 0) {
        search = tag + 2;
        continue;
      }
      q += 6;
      while (q < src_.size() && is_space(src_[q])) ++q;
      char close_sign = '\0';
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) close_sign = src_[q++];
      if (src_.compare(q, 2, "%}") != 0) fail(q, "expected '%}' after 'endraw'");
      std::string body = src_.substr(pos_, tag - pos_);
      if (open_sign == '-') {
        while (!body.empty() && is_space(body.back())) body.pop_back();
      }
      text_offset_ = pos_;
      push_text(std::move(body));
      pos_ = q + 2;
      after_end(close_sign, true);
      return true;
    }
  }

  void lex_tag(size_t start, char kind) {
    bool is_block = kind == '%';
    tokens_.push_back(make(is_block ? TokenType::kBlockBegin : TokenType::kVarBegin, start));
    const char* end_tag = is_block ? "%}" : "}}";
    std::vector<char> balance;
    while (true) {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
      if (pos_ >= src_.size()) {
        fail(start,
             fmt::format("unexpected end of template: the tag opened here has no '{}'", end_tag));
      }
      if (balance.empty()) {
        char sign = src_[pos_];
        bool has_sign = sign == '-' || (sign == '+' && is_block);
        size_t tag_at = has_sign ? pos_ + 1 : pos_;
        if (src_.compare(tag_at, 2, end_tag) == 0) {
          tokens_.push_back(make(is_block ? TokenType::kBlockEnd : TokenType::kVarEnd, pos_));
          pos_ = tag_at + 2;
          after_end(has_sign ? sign : '\0', is_block);
          return;
        }
      }
      lex_expression_token(balance);
    }
  }

  void lex_expression_token(std::vector<char>& balance) {
    size_t at = pos_;
    char c = src_[pos_];
    if (is_name_start(c)) {
      while (pos_ < src_.size() && is_name_char(src_[pos_])) ++pos_;
      tokens_.push_back(make(TokenType::kName, at, src_.substr(at, pos_ - at)));
      return;
    }
    if (is_digit(c)) {
      lex_number(at);
      return;
    }
    if (c == '\'' || c == '"') {
      lex_string(at, c);
      return;
    }
    static const char* kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : kTwo) {
      if (src_.compare(pos_, 2, op) == 0) {
        pos_ += 2;
        tokens_.push_back(make(TokenType::kOp, at, op));
        return;
      }
    }
    if (std::string_view("+-*/%~()[]{},.:|=<>;").find(c) == std::string_view::npos) {
      fail(at, fmt::format("unexpected character '{}'", c));
    }
    if (c == '(' || c == '[' || c == '{') {
      balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (balance.empty()) fail(at, fmt::format("unexpected '{}'", c));
      if (balance.back() != c)
        fail(at, fmt::format("unexpected '{}', expected '{}'", c, balance.back()));
      balance.pop_back();
    }
    ++pos_;
    tokens_.push_back(make(TokenType::kOp, at, std::string(1, c)));
  }

  void lex_number(size_t at) {
    auto digits = [&] {
      while (pos_ < src_.size() &&
             (is_digit(src_[pos_]) ||
              (src_[pos_] == '_' && pos_ + 1 < src_.size() && is_digit(src_[pos_ + 1])))) {
        ++pos_;
      }
    };
    digits();
    bool is_float = false;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && is_digit(src_[pos_ + 1])) {
      is_float = true;
      ++pos_;
      digits();
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t p = pos_ + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (p < src_.size() && is_digit(src_[p])) {
        is_float = true;
        pos_ = p;
        digits();
      }
    }
    std::string text = src_.substr(at, pos_ - at);
    std::erase(text, '_');
    Token t = make(is_float ? TokenType::kFloat : TokenType::kInt, at, text);
    errno = 0;
    if (is_float) {
      t.float_value = std::strtod(text.c_str(), nullptr);
    } else {
      t.int_value = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == ERANGE)
        fail(at, fmt::format("integer literal {} does not fit in 64 bits", text));
    }
    tokens_.push_back(std::move(t));
  }

  // Python string escapes (jinja2 decodes literals with "unicode-escape").
  void lex_string(size_t at, char quote) {
    ++pos_;
    std::string out;
    while (true) {
      if (pos_ >= src_.size()) fail(at, "unterminated string literal");
      char c = src_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= src_.size()) fail(at, "unterminated string literal");
      char e = src_[pos_++];
      auto hex = [&](int n) -> uint32_t {
        if (pos_ + static_cast<size_t>(n) > src_.size()) fail(pos_, "truncated escape sequence");
        uint32_t v = 0;
        for (int i = 0; i < n; ++i) {
          char h = src_[pos_++];
          int d = is_digit(h)              ? h - '0'
                  : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                  : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                           : -1;
          if (d < 0) fail(pos_ - 1, "invalid hex digit in escape sequence");
          v = v * 16 + static_cast<uint32_t>(d);
        }
        return v;
      };
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'v':
          out += '\v';
          break;
        case 'a':
          out += '\a';
          break;
        case '0':
          out += '\0';
          break;
        case '\\':
          out += '\\';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case '\n':
          break;  // line continuation
        case 'x':
          out += utf8_encode({hex(2)}, 0, 1);
          break;
        case 'u':
          out += utf8_encode({hex(4)}, 0, 1);
          break;
        case 'U': {
          uint32_t cp = hex(8);
          if (cp > 0x10FFFF) fail(pos_ - 10, "escape sequence beyond U+10FFFF");
          out += utf8_encode({cp}, 0, 1);
          break;
        }
        default:
          out += '\\';
          out += e;
      }
    }
    tokens_.push_back(make(TokenType::kString, at, std::move(out)));
  }

  std::string src_;
  Options opt_;
  size_t pos_ = 0;
  size_t text_offset_ = 0;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const Options& options) {
  // jinja2 normalizes newlines to "\n" and drops one trailing newline.
  std::string src;
  src.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      src += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      src += source[i];
    }
  }
  if (!options.keep_trailing_newline && !src.empty() && src.back() == '\n') src.pop_back();
  return Lexer(std::move(src), options).run();
}

}  // namespace kpt::jinja
