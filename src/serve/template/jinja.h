// A Jinja2-compatible template engine (the subset chat templates use), configured by default
// like transformers' chat-template environment: trim_blocks, lstrip_blocks, loopcontrols,
// raise_exception/strftime_now globals and a tojson that does not escape non-ASCII.
// docs/chat_templates.md lists what is supported and every known difference from jinja2.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "serve/template/lexer.h"
#include "serve/template/value.h"

namespace kpt::jinja {

struct Program;

class Template {
 public:
  // Throws kpt::Error(kInvalidArgument) "template syntax error at LINE:COL: ..." when malformed,
  // including unknown filter or test names (jinja2 rejects those when compiling too).
  static Template parse(std::string_view source, const Options& options = {});

  // `context` must be a JSON object: its keys become top-level variables. Throws
  // kpt::Error(kInvalidArgument): raise_exception(msg) carries `msg` verbatim, other evaluation
  // errors read "template error at line N: ...".
  std::string render(const nlohmann::ordered_json& context) const;
  std::string render(const Dict& context) const;

 private:
  explicit Template(std::shared_ptr<const Program> program) : program_(std::move(program)) {}
  std::shared_ptr<const Program> program_;
};

}  // namespace kpt::jinja
