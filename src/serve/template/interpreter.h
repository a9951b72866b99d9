// Tree-walking evaluator: one Renderer per render() call; scopes follow jinja2 (a for-loop
// iteration, a macro call and a call block get their own scope; if-blocks do not).
#pragma once

#include <string>

#include "serve/template/ast.h"

namespace kpt::jinja {

// Renders `program` with `context` as top-level variables over `globals`.
std::string render_program(const Program& program, const Dict& globals, const Dict& context);

}  // namespace kpt::jinja
