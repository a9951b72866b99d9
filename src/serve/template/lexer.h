// Tokenizer for Jinja templates, with jinja2's whitespace rules: `-` strips all whitespace on
// that side of a tag, trim_blocks drops the first newline after a block/comment tag, lstrip_blocks
// drops spaces and tabs before a block/comment tag that starts a line, `+` opts out of either.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kpt::jinja {

struct Options {
  // transformers' environment: trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False.
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

enum class TokenType {
  kText,        // template data between tags (already whitespace-processed)
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,
  kInt,
  kFloat,
  kOp,  // + - * / // % ** ~ ( ) [ ] { } , . : | = == != < <= > >= ;
  kEof,
};

struct Token {
  TokenType type;
  std::string text;  // text, name, decoded string literal or operator
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
  int col = 1;
};

// Throws kpt::Error(kInvalidArgument) "template syntax error at L:C: ..." on malformed input.
std::vector<Token> tokenize(std::string_view source, const Options& options);

// "template syntax error at 3:14: <message>".
[[noreturn]] void throw_syntax_error(int line, int col, const std::string& message);

}  // namespace kpt::jinja
