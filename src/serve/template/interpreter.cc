#include "serve/template/interpreter.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "kpt/status.h"
#include "serve/template/builtins.h"

namespace kpt::jinja {
namespace {

// Macro recursion bound: far above what templates need (recursive JSON-schema renderers nest a
// few levels), low enough that the C++ stack cannot overflow.
constexpr int kMaxCallDepth = 64;
// Strings built by `*` beyond this are refused instead of exhausting memory.
constexpr size_t kMaxRepeatBytes = size_t{64} << 20;

struct Scope {
  explicit Scope(const Scope* parent_scope = nullptr) : parent(parent_scope) {}
  const Scope* parent = nullptr;
  std::vector<std::pair<std::string, Value>> vars;
  // Created when a macro is defined here: the macro holds a weak reference, so it can tell
  // whether this scope still exists when it is called (it may escape through a namespace).
  std::shared_ptr<char> alive;

  const Value* find(std::string_view name) const {
    for (const Scope* s = this; s; s = s->parent) {
      for (const auto& [k, v] : s->vars) {
        if (k == name) return &v;
      }
    }
    return nullptr;
  }
  void set(const std::string& name, Value value) {
    for (auto& [k, v] : vars) {
      if (k == name) {
        v = std::move(value);
        return;
      }
    }
    vars.emplace_back(name, std::move(value));
  }
};

enum class Flow { kNormal, kBreak, kContinue };

class Renderer {
 public:
  Renderer(const Dict& globals, const Dict& context) {
    globals_.vars = globals.items;
    root_.parent = &globals_;
    root_.vars = context.items;
  }

  std::string run(const Program& program) {
    std::string out;
    try {
      exec_body(program.body, root_, out);
    } catch (const TemplateRaised& e) {
      throw Error(ErrorCode::kInvalidArgument, e.what());
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kInvalidArgument) throw;
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("template error at line {}: {}", line_, e.what()));
    }
    return out;
  }

 private:
  Flow exec_body(const std::vector<NodePtr>& body, Scope& scope, std::string& out) {
    for (const NodePtr& n : body) {
      Flow f = exec(*n, scope, out);
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

  Flow exec(const Node& n, Scope& scope, std::string& out) {
    line_ = n.line;
    switch (n.kind) {
      case NodeKind::kText:
        out += n.name;
        return Flow::kNormal;
      case NodeKind::kOutput: {
        Value v = eval(*n.args[0], scope);
        if (v.is_string()) {
          out += v.as_string();
        } else {
          out += v.str();
        }
        return Flow::kNormal;
      }
      case NodeKind::kIf:
        for (size_t i = 0; i < n.args.size(); ++i) {
          if (eval(*n.args[i], scope).truthy()) return exec_body(n.branches[i], scope, out);
        }
        return exec_body(n.else_body, scope, out);
      case NodeKind::kFor:
        return exec_for(n, scope, out);
      case NodeKind::kSet: {
        Value v = eval(*n.args[0], scope);
        if (!n.attr.empty()) {
          const Value* ns = scope.find(n.name);
          if (!ns || !ns->is_dict() || !ns->as_dict().is_namespace) {
            throw_render_error(fmt::format(
                "cannot assign attribute '{}' on '{}': not a namespace()", n.attr, n.name));
          }
          ns->as_dict().set(n.attr, std::move(v));
        } else {
          assign(n.targets, std::move(v), scope);
        }
        return Flow::kNormal;
      }
      case NodeKind::kSetBlock: {
        std::string body;
        Scope inner(&scope);
        // break/continue inside the block leave it before the assignment, as in jinja2.
        if (Flow f = exec_body(n.body, inner, body); f != Flow::kNormal) return f;
        assign(n.targets, apply_filters(n.filters, Value(std::move(body)), scope), scope);
        return Flow::kNormal;
      }
      case NodeKind::kMacro:
        scope.set(n.name, make_macro(n, scope));
        return Flow::kNormal;
      case NodeKind::kCallBlock: {
        out += call_block(n, scope).str();
        return Flow::kNormal;
      }
      case NodeKind::kFilterBlock: {
        std::string body;
        if (Flow f = exec_body(n.body, scope, body); f != Flow::kNormal) return f;
        out += apply_filters(n.filters, Value(std::move(body)), scope).str();
        return Flow::kNormal;
      }
      case NodeKind::kBreak:
        return Flow::kBreak;
      case NodeKind::kContinue:
        return Flow::kContinue;
      default:
        KPT_CHECK(false, "expression node in statement position");
    }
    return Flow::kNormal;
  }

  void assign(const std::vector<std::string>& targets, Value v, Scope& scope) {
    if (targets.size() == 1) {
      scope.set(targets[0], std::move(v));
      return;
    }
    std::vector<Value> items = v.is_list() ? v.as_list().items : std::vector<Value>{};
    if (!v.is_list() && !v.is_string()) {
      throw_render_error(fmt::format("cannot unpack non-sequence {}", v.type_name()));
    }
    if (v.is_string()) items = iterate(v);
    if (items.size() != targets.size()) {
      throw_render_error(
          fmt::format("cannot unpack {} values into {} names", items.size(), targets.size()));
    }
    for (size_t i = 0; i < targets.size(); ++i) scope.set(targets[i], items[i]);
  }

  Flow exec_for(const Node& n, Scope& scope, std::string& out) {
    Value seq = eval(*n.args[0], scope);
    std::vector<Value> items = iterate(seq);
    if (n.args[1]) {
      // The loop filter runs before counting: loop.length is the filtered length.
      std::vector<Value> kept;
      for (Value& item : items) {
        Scope probe(&scope);
        assign(n.targets, item, probe);
        if (eval(*n.args[1], probe).truthy()) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec_body(n.else_body, scope, out);
    const auto length = static_cast<int64_t>(items.size());
    // One loop object for the whole loop, updated per iteration, as jinja2's LoopContext is.
    auto loop = std::make_shared<Dict>();
    auto index = std::make_shared<int64_t>(0);
    auto cycle = std::make_shared<Function>();
    cycle->name = "loop.cycle";
    cycle->call = [index](CallArgs& a) -> Value {
      if (a.positional.empty()) throw_render_error("no items for cycling given");
      return a.positional[static_cast<size_t>(*index) % a.positional.size()];
    };
    for (const char* key : {"index", "index0", "revindex", "revindex0", "first", "last", "length",
                            "depth", "depth0", "previtem", "nextitem"}) {
      loop->items.emplace_back(key, Value());
    }
    loop->items.emplace_back("cycle", Value(std::move(cycle)));
    const Value loop_value(loop);
    bool body_completed = false;
    for (int64_t i = 0; i < length; ++i) {
      Scope iter(&scope);
      *index = i;
      auto& li = loop->items;
      li[0].second = Value(i + 1);
      li[1].second = Value(i);
      li[2].second = Value(length - i);
      li[3].second = Value(length - i - 1);
      li[4].second = Value(i == 0);
      li[5].second = Value(i == length - 1);
      li[6].second = Value(length);
      li[7].second = Value(1);
      li[8].second = Value(0);
      li[9].second =
          i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("there is no previous item");
      li[10].second = i + 1 < length ? items[static_cast<size_t>(i + 1)]
                                     : Value::undefined("there is no next item");
      iter.vars.emplace_back("loop", loop_value);
      assign(n.targets, items[static_cast<size_t>(i)], iter);
      Flow f = exec_body(n.body, iter, out);
      if (f == Flow::kBreak) break;
      if (f == Flow::kNormal) body_completed = true;
    }
    // jinja2 clears its "no iteration" flag at the end of the loop body, so `else` also runs when
    // every iteration left through continue, or the first one through break.
    if (!body_completed) return exec_body(n.else_body, scope, out);
    return Flow::kNormal;
  }

  Value make_macro(const Node& n, Scope& scope) {
    auto fn = std::make_shared<Function>();
    fn->name = n.name;
    const Node* def = &n;
    if (!scope.alive) scope.alive = std::make_shared<char>();
    std::weak_ptr<char> alive = scope.alive;
    const Scope* defining = &scope;
    fn->call = [this, def, alive, defining](CallArgs& a) {
      return call_macro(*def, a, alive.expired() ? &root_ : defining);
    };
    return Value(std::move(fn));
  }

  // Macros see the scope they were defined in, live: later top-level sets are visible, as in
  // jinja2.
  Value call_macro(const Node& def, CallArgs& a, const Scope* parent) {
    if (call_depth_ >= kMaxCallDepth) {
      throw_render_error(
          fmt::format("macro '{}' nested deeper than {} calls", def.name, kMaxCallDepth));
    }
    if (a.positional.size() > def.targets.size()) {
      throw_render_error(fmt::format("macro '{}' takes not more than {} argument(s)", def.name,
                                     def.targets.size()));
    }
    Scope scope(parent);
    std::vector<bool> bound(def.targets.size(), false);
    for (size_t i = 0; i < a.positional.size(); ++i) {
      scope.set(def.targets[i], a.positional[i]);
      bound[i] = true;
    }
    for (auto& [k, v] : a.keyword) {
      if (k == "caller") {
        scope.set("caller", v);
        continue;
      }
      auto it = std::find(def.targets.begin(), def.targets.end(), k);
      if (it == def.targets.end()) {
        throw_render_error(fmt::format("macro '{}' takes no keyword argument '{}'", def.name, k));
      }
      scope.set(k, v);
      bound[static_cast<size_t>(it - def.targets.begin())] = true;
    }
    for (size_t i = 0; i < def.targets.size(); ++i) {
      if (bound[i]) continue;
      scope.set(def.targets[i], def.defaults[i] ? eval(*def.defaults[i], scope)
                                                : Value::undefined(fmt::format("'{}' is undefined",
                                                                               def.targets[i])));
    }
    ++call_depth_;
    std::string out;
    try {
      exec_body(def.body, scope, out);
    } catch (...) {
      --call_depth_;
      throw;
    }
    --call_depth_;
    return Value(std::move(out));
  }

  Value call_block(const Node& n, Scope& scope) {
    const Node& call = *n.args[0];
    auto caller = std::make_shared<Function>();
    caller->name = "caller";
    const Node* def = &n;
    Scope* outer = &scope;
    caller->call = [this, def, outer](CallArgs& a) {
      Scope inner(outer);
      for (size_t i = 0; i < def->targets.size(); ++i) {
        inner.set(def->targets[i], i < a.positional.size() ? a.positional[i]
                                   : def->defaults[i]      ? eval(*def->defaults[i], inner)
                                                           : Value());
      }
      std::string out;
      exec_body(def->body, inner, out);
      return Value(std::move(out));
    };
    CallArgs args = eval_args(call, scope, 1);
    args.keyword.emplace_back("caller", Value(std::move(caller)));
    return invoke(eval(*call.args[0], scope), args);
  }

  Value apply_filters(const std::vector<NodePtr>& filters, Value v, Scope& scope) {
    for (const NodePtr& f : filters) {
      CallArgs args = eval_args(*f, scope, 1);
      v = find_filter(f->name)(v, args);
    }
    return v;
  }

  CallArgs eval_args(const Node& n, Scope& scope, size_t first) {
    CallArgs args;
    for (size_t i = first; i < n.args.size(); ++i)
      args.positional.push_back(eval(*n.args[i], scope));
    for (const auto& [k, v] : n.kwargs) args.keyword.emplace_back(k, eval(*v, scope));
    return args;
  }

  static Value invoke(const Value& callee, CallArgs& args) {
    if (callee.is_undefined()) throw_render_error(callee.as_undefined().hint);
    if (!callee.is_function()) {
      throw_render_error(fmt::format("'{}' object is not callable", callee.type_name()));
    }
    return callee.as_function().call(args);
  }

  Value eval(const Node& n, Scope& scope) {
    switch (n.kind) {
      case NodeKind::kLiteral:
        return n.literal;
      case NodeKind::kName: {
        const Value* v = scope.find(n.name);
        return v ? *v : Value::undefined(fmt::format("'{}' is undefined", n.name));
      }
      case NodeKind::kList:
      case NodeKind::kTuple: {
        std::vector<Value> items;
        items.reserve(n.args.size());
        for (const NodePtr& a : n.args) items.push_back(eval(*a, scope));
        return Value::list(std::move(items), n.kind == NodeKind::kTuple);
      }
      case NodeKind::kDict: {
        Value d = Value::dict();
        for (size_t i = 0; i + 1 < n.args.size(); i += 2) {
          Value k = eval(*n.args[i], scope);
          if (!k.is_string()) {
            throw_render_error(
                fmt::format("dict keys must be strings here, got {}", k.type_name()));
          }
          d.as_dict().set(k.as_string(), eval(*n.args[i + 1], scope));
        }
        return d;
      }
      case NodeKind::kGetAttr:
        return get_attribute(eval(*n.args[0], scope), n.name);
      case NodeKind::kGetItem:
        return get_item(eval(*n.args[0], scope), eval(*n.args[1], scope));
      case NodeKind::kSlice: {
        Value obj = eval(*n.args[0], scope);
        auto part = [&](size_t i) { return n.args[i] ? eval(*n.args[i], scope) : Value(nullptr); };
        return slice_value(obj, part(1), part(2), part(3));
      }
      case NodeKind::kCall: {
        line_ = n.line;
        Value callee = eval(*n.args[0], scope);
        CallArgs args = eval_args(n, scope, 1);
        return invoke(callee, args);
      }
      case NodeKind::kFilter: {
        line_ = n.line;
        Value operand = eval(*n.args[0], scope);
        CallArgs args = eval_args(n, scope, 1);
        return find_filter(n.name)(operand, args);
      }
      case NodeKind::kTest: {
        line_ = n.line;
        Value operand = eval(*n.args[0], scope);
        CallArgs args = eval_args(n, scope, 1);
        return Value(find_test(n.name)(operand, args) != n.negated);
      }
      case NodeKind::kUnary: {
        Value v = eval(*n.args[0], scope);
        if (n.name == "not") return Value(!v.truthy());
        if (v.is_undefined()) throw_render_error(v.as_undefined().hint);
        if (n.name == "+" && v.is_number()) return v.is_bool() ? Value(int64_t{v.as_bool()}) : v;
        if (v.is_int() && v.as_int() != std::numeric_limits<int64_t>::min())
          return Value(-v.as_int());
        if (v.is_bool()) return Value(-int64_t{v.as_bool()});
        if (v.is_float()) return Value(-v.as_float());
        throw_render_error(
            fmt::format("bad operand type for unary {}: '{}'", n.name, v.type_name()));
      }
      case NodeKind::kBinary:
        line_ = n.line;
        return binary_op(n.name, eval(*n.args[0], scope), eval(*n.args[1], scope));
      case NodeKind::kCompare: {
        Value lhs = eval(*n.args[0], scope);
        for (size_t i = 0; i < n.ops.size(); ++i) {
          Value rhs = eval(*n.args[i + 1], scope);
          if (!compare_op(n.ops[i], lhs, rhs)) return Value(false);
          lhs = std::move(rhs);
        }
        return Value(true);
      }
      case NodeKind::kAnd: {
        Value lhs = eval(*n.args[0], scope);
        return lhs.truthy() ? eval(*n.args[1], scope) : lhs;
      }
      case NodeKind::kOr: {
        Value lhs = eval(*n.args[0], scope);
        return lhs.truthy() ? lhs : eval(*n.args[1], scope);
      }
      case NodeKind::kCondExpr:
        if (eval(*n.args[0], scope).truthy()) return eval(*n.args[1], scope);
        if (n.args[2]) return eval(*n.args[2], scope);
        return Value::undefined(
            fmt::format("the inline if-expression on line {} evaluated to false and no else "
                        "section was defined",
                        n.line));
      default:
        KPT_CHECK(false, "statement node in expression position");
    }
    return Value();
  }

  static bool compare_op(const std::string& op, const Value& a, const Value& b) {
    if (op == "==") return values_equal(a, b);
    if (op == "!=") return !values_equal(a, b);
    if (op == "in" || op == "not in") {
      bool found = false;
      if (b.is_string()) {
        if (!a.is_string()) {
          throw_render_error(
              fmt::format("'in <string>' requires string as left operand, not {}", a.type_name()));
        }
        found = b.as_string().find(a.as_string()) != std::string::npos;
      } else if (b.is_mapping()) {
        found = a.is_string() && b.as_dict().find(a.as_string()) != nullptr;
      } else if (b.is_list()) {
        for (const Value& x : b.as_list().items) {
          if (values_equal(a, x)) {
            found = true;
            break;
          }
        }
      } else if (!b.is_undefined()) {
        throw_render_error(fmt::format("argument of type '{}' is not iterable", b.type_name()));
      }
      return op == "in" ? found : !found;
    }
    int c = compare_values(a, b);
    if (op == "<") return c < 0;
    if (op == "<=") return c <= 0;
    if (op == ">") return c > 0;
    return c >= 0;
  }

  static int64_t as_integer(const Value& v) {
    return v.is_bool() ? int64_t{v.as_bool()} : v.as_int();
  }

  static Value binary_op(const std::string& op, Value a, const Value& b) {
    if (op == "~") {
      std::string s = a.is_string() ? std::move(a).take_string() : a.str();
      s += b.is_string() ? b.as_string() : b.str();
      return Value(std::move(s));
    }
    if (a.is_undefined()) throw_render_error(a.as_undefined().hint);
    if (b.is_undefined()) throw_render_error(b.as_undefined().hint);
    auto unsupported = [&]() -> Value {
      throw_render_error(fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op,
                                     a.type_name(), b.type_name()));
    };
    bool ints = (a.is_int() || a.is_bool()) && (b.is_int() || b.is_bool());
    bool nums = a.is_number() && b.is_number();
    if (op == "+") {
      if (ints) {
        int64_t r;
        if (__builtin_add_overflow(as_integer(a), as_integer(b), &r))
          throw_render_error("integer overflow");
        return Value(r);
      }
      if (nums) return Value(a.to_double() + b.to_double());
      if (a.is_string() && b.is_string()) {
        std::string s = std::move(a).take_string();
        s += b.as_string();
        return Value(std::move(s));
      }
      if (a.is_list() && b.is_list() && a.as_list().is_tuple == b.as_list().is_tuple) {
        std::vector<Value> items = a.as_list().items;
        items.insert(items.end(), b.as_list().items.begin(), b.as_list().items.end());
        return Value::list(std::move(items), a.as_list().is_tuple);
      }
      return unsupported();
    }
    if (op == "-") {
      if (ints) {
        int64_t r;
        if (__builtin_sub_overflow(as_integer(a), as_integer(b), &r))
          throw_render_error("integer overflow");
        return Value(r);
      }
      if (nums) return Value(a.to_double() - b.to_double());
      return unsupported();
    }
    if (op == "*") {
      if (ints) {
        int64_t r;
        if (__builtin_mul_overflow(as_integer(a), as_integer(b), &r))
          throw_render_error("integer overflow");
        return Value(r);
      }
      if (nums) return Value(a.to_double() * b.to_double());
      const Value* seq = (a.is_string() || a.is_list())   ? &a
                         : (b.is_string() || b.is_list()) ? &b
                                                          : nullptr;
      const Value* count = seq == &a ? &b : &a;
      if (!seq || !(count->is_int() || count->is_bool())) return unsupported();
      int64_t times = std::max<int64_t>(as_integer(*count), 0);
      size_t unit = seq->is_string() ? seq->as_string().size() : seq->as_list().items.size() * 16;
      if (unit > 0 && static_cast<uint64_t>(times) > kMaxRepeatBytes / unit) {
        throw_render_error("sequence repetition result too large");
      }
      if (seq->is_string()) {
        std::string out;
        for (int64_t i = 0; i < times; ++i) out += seq->as_string();
        return Value(std::move(out));
      }
      std::vector<Value> items;
      for (int64_t i = 0; i < times; ++i) {
        items.insert(items.end(), seq->as_list().items.begin(), seq->as_list().items.end());
      }
      return Value::list(std::move(items), seq->as_list().is_tuple);
    }
    if (!nums) {
      if (op == "%" && a.is_string()) return Value(percent_format(a.as_string(), b));
      return unsupported();
    }
    if (op == "/") {
      if (b.to_double() == 0) throw_render_error("division by zero");
      return Value(a.to_double() / b.to_double());
    }
    if (op == "//" || op == "%") {
      if (b.to_double() == 0) {
        throw_render_error(op == "//" ? "integer division or modulo by zero" : "modulo by zero");
      }
      if (ints) {
        int64_t x = as_integer(a), y = as_integer(b);
        if (x == std::numeric_limits<int64_t>::min() && y == -1)
          throw_render_error("integer overflow");
        int64_t q = x / y, r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) {
          --q;
          r += y;
        }
        return op == "//" ? Value(q) : Value(r);
      }
      // CPython's float_divmod, so -7.5 // 2 and -7.5 % 2 match Python bit for bit.
      double x = a.to_double(), y = b.to_double();
      double mod = std::fmod(x, y);
      double div = (x - mod) / y;
      if (mod != 0) {
        if ((y < 0) != (mod < 0)) {
          mod += y;
          div -= 1.0;
        }
      } else {
        mod = std::copysign(0.0, y);
      }
      if (op == "%") return Value(mod);
      double floordiv;
      if (div != 0) {
        floordiv = std::floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
      } else {
        floordiv = std::copysign(0.0, x / y);
      }
      return Value(floordiv);
    }
    // "**"
    if (ints && as_integer(b) >= 0) {
      int64_t base = as_integer(a), e = as_integer(b), r = 1;
      for (int64_t i = 0; i < e; ++i) {
        if (__builtin_mul_overflow(r, base, &r)) throw_render_error("integer overflow");
        if (r == 0 || r == 1) break;
      }
      if (r == -1 || (base == -1)) r = (e % 2 == 0) ? 1 : -1;
      if (base == 0) r = e == 0 ? 1 : 0;
      return Value(r);
    }
    return Value(std::pow(a.to_double(), b.to_double()));
  }

  Scope globals_;
  Scope root_;
  int line_ = 0;
  int call_depth_ = 0;
};

}  // namespace

std::string render_program(const Program& program, const Dict& globals, const Dict& context) {
  Renderer r(globals, context);
  return r.run(program);
}

}  // namespace kpt::jinja
