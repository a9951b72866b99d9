#include "serve/template/jinja.h"

#include "kpt/status.h"
#include "serve/template/ast.h"
#include "serve/template/builtins.h"
#include "serve/template/interpreter.h"

namespace kpt::jinja {
namespace {

const Dict& globals() {
  static const Dict kGlobals = [] {
    Dict d;
    add_globals(d);
    return d;
  }();
  return kGlobals;
}

}  // namespace

Template Template::parse(std::string_view source, const Options& options) {
  return Template(parse_program(source, options));
}

std::string Template::render(const nlohmann::ordered_json& context) const {
  if (!context.is_object()) {
    throw Error(ErrorCode::kInvalidArgument, "template context must be a JSON object");
  }
  Value ctx = Value::from_json(context);
  return render(ctx.as_dict());
}

std::string Template::render(const Dict& context) const {
  return render_program(*program_, globals(), context);
}

}  // namespace kpt::jinja
