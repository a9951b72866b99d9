// Recursive-descent parser following jinja2's grammar (jinja2/parser.py), precedence from
// loosest to tightest: `a if c else b`, or, and, not, comparisons/in, + -, ~, * / // %, **,
// unary - +, then primaries with postfix (. [] ()) and filters/tests (| is).
#include <fmt/format.h>

#include "kpt/status.h"
#include "serve/template/ast.h"
#include "serve/template/lexer.h"

namespace kpt::jinja {
namespace {

// Deeper nesting than any real template; bounds the parser's and evaluator's stack use.
constexpr int kMaxNesting = 100;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  std::shared_ptr<const Program> run() {
    auto program = std::make_shared<Program>();
    program->body = parse_body({});
    if (cur().type != TokenType::kEof) fail_here("unexpected tag");
    return program;
  }

 private:
  struct DepthGuard {
    explicit DepthGuard(Parser& p) : parser(p) {
      if (++parser.depth_ > kMaxNesting) {
        parser.fail_here(fmt::format("template nested deeper than {} levels", kMaxNesting));
      }
    }
    ~DepthGuard() { --parser.depth_; }
    Parser& parser;
  };

  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t n = 1) const { return toks_[std::min(pos_ + n, toks_.size() - 1)]; }
  void advance() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  bool is_op(const char* op) const { return cur().type == TokenType::kOp && cur().text == op; }
  bool is_name(const char* name) const {
    return cur().type == TokenType::kName && cur().text == name;
  }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    advance();
    return true;
  }
  static std::string describe(const Token& t) {
    switch (t.type) {
      case TokenType::kText:
        return "template text";
      case TokenType::kVarBegin:
        return "'{{'";
      case TokenType::kVarEnd:
        return "'}}'";
      case TokenType::kBlockBegin:
        return "'{%'";
      case TokenType::kBlockEnd:
        return "'%}'";
      case TokenType::kName:
        return "'" + t.text + "'";
      case TokenType::kString:
        return "string literal";
      case TokenType::kInt:
      case TokenType::kFloat:
        return "number " + t.text;
      case TokenType::kOp:
        return "'" + t.text + "'";
      case TokenType::kEof:
        return "end of template";
    }
    return "token";
  }
  [[noreturn]] void fail_here(const std::string& message) const {
    throw_syntax_error(cur().line, cur().col, message + ", got " + describe(cur()));
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail_here(fmt::format("expected '{}'", op));
  }
  std::string expect_name() {
    if (cur().type != TokenType::kName) fail_here("expected a name");
    std::string n = cur().text;
    advance();
    return n;
  }
  void expect_block_end() {
    if (cur().type != TokenType::kBlockEnd) fail_here("expected end of statement block '%}'");
    advance();
  }
  NodePtr node(NodeKind kind) const { return std::make_unique<Node>(kind, cur().line, cur().col); }

  // ---- statements ----

  // Parses until `{% <one of end_tags>`; leaves the position at that tag name.
  std::vector<NodePtr> parse_body(const std::vector<std::string>& end_tags) {
    DepthGuard guard(*this);
    std::vector<NodePtr> body;
    while (true) {
      const Token& t = cur();
      if (t.type == TokenType::kEof) {
        if (!end_tags.empty()) {
          fail_here(fmt::format("unexpected end of template, expected '{}'",
                                fmt::join(end_tags, "' or '")));
        }
        return body;
      }
      if (t.type == TokenType::kText) {
        auto n = node(NodeKind::kText);
        n->name = t.text;
        advance();
        body.push_back(std::move(n));
      } else if (t.type == TokenType::kVarBegin) {
        auto n = node(NodeKind::kOutput);
        advance();
        n->args.push_back(parse_tuple(true, false));
        if (cur().type != TokenType::kVarEnd) fail_here("expected end of print statement '}}'");
        advance();
        body.push_back(std::move(n));
      } else if (t.type == TokenType::kBlockBegin) {
        const Token& tag = peek();
        if (tag.type == TokenType::kName &&
            std::find(end_tags.begin(), end_tags.end(), tag.text) != end_tags.end()) {
          advance();
          return body;
        }
        advance();
        body.push_back(parse_statement(end_tags));
      } else {
        fail_here("unexpected token");
      }
    }
  }

  NodePtr parse_statement(const std::vector<std::string>& outer_end_tags) {
    if (cur().type != TokenType::kName) fail_here("expected a statement name");
    std::string tag = cur().text;
    if (tag == "if") return parse_if();
    if (tag == "for") return parse_for();
    if (tag == "set") return parse_set();
    if (tag == "macro") return parse_macro();
    if (tag == "call") return parse_call_block();
    if (tag == "filter") return parse_filter_block();
    if (tag == "generation") return parse_generation();
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail_here(fmt::format("'{}' outside of a loop", tag));
      auto n = node(tag == "break" ? NodeKind::kBreak : NodeKind::kContinue);
      advance();
      expect_block_end();
      return n;
    }
    std::string expected =
        outer_end_tags.empty()
            ? ""
            : fmt::format("; expected '{}'", fmt::join(outer_end_tags, "' or '"));
    throw_syntax_error(cur().line, cur().col, fmt::format("unknown tag '{}'{}", tag, expected));
  }

  NodePtr parse_if() {
    auto n = node(NodeKind::kIf);
    advance();
    while (true) {
      n->args.push_back(parse_tuple(true, false));
      expect_block_end();
      n->branches.push_back(parse_body({"elif", "else", "endif"}));
      std::string tag = cur().text;
      advance();
      if (tag == "elif") continue;
      expect_block_end_after_tag_maybe_else(n.get(), tag);
      return n;
    }
  }
  void expect_block_end_after_tag_maybe_else(Node* n, const std::string& tag) {
    expect_block_end();
    if (tag == "else") {
      n->else_body = parse_body({"endif"});
      advance();
      expect_block_end();
    }
  }

  std::vector<std::string> parse_targets(const char* end_name) {
    std::vector<std::string> targets;
    bool paren = skip_op("(");
    while (true) {
      targets.push_back(expect_name());
      if (!skip_op(",")) break;
      if ((end_name && is_name(end_name)) || is_op(")") || is_op("=")) break;
    }
    if (paren) expect_op(")");
    return targets;
  }

  NodePtr parse_for() {
    auto n = node(NodeKind::kFor);
    advance();
    n->targets = parse_targets("in");
    if (!skip_name("in")) fail_here("expected 'in'");
    n->args.push_back(parse_tuple(false, false));
    n->args.push_back(skip_name("if") ? parse_expression(true) : nullptr);
    if (is_name("recursive")) fail_here("recursive loops are not supported");
    expect_block_end();
    ++loop_depth_;
    n->body = parse_body({"endfor", "else"});
    --loop_depth_;
    std::string tag = cur().text;
    advance();
    expect_block_end();
    if (tag == "else") {
      n->else_body = parse_body({"endfor"});
      advance();
      expect_block_end();
    }
    return n;
  }

  NodePtr parse_set() {
    auto n = node(NodeKind::kSet);
    advance();
    if (cur().type == TokenType::kName && peek().type == TokenType::kOp && peek().text == ".") {
      n->name = expect_name();
      advance();
      n->attr = expect_name();
      n->targets.push_back(n->name);
    } else {
      n->targets = parse_targets(nullptr);
    }
    if (skip_op("=")) {
      n->args.push_back(parse_tuple(true, false));
      expect_block_end();
      return n;
    }
    if (!n->attr.empty()) fail_here("expected '='");
    n->kind = NodeKind::kSetBlock;
    parse_filter_chain(n->filters);
    expect_block_end();
    n->body = parse_body({"endset"});
    advance();
    expect_block_end();
    return n;
  }

  void parse_params(Node* n) {
    expect_op("(");
    while (!is_op(")")) {
      if (!n->targets.empty()) expect_op(",");
      if (is_op(")")) break;
      n->targets.push_back(expect_name());
      n->defaults.push_back(skip_op("=") ? parse_expression(true) : nullptr);
    }
    advance();
  }

  NodePtr parse_macro() {
    auto n = node(NodeKind::kMacro);
    advance();
    n->name = expect_name();
    parse_params(n.get());
    expect_block_end();
    int saved_loops = std::exchange(loop_depth_, 0);
    n->body = parse_body({"endmacro"});
    loop_depth_ = saved_loops;
    advance();
    expect_block_end();
    return n;
  }

  NodePtr parse_call_block() {
    auto n = node(NodeKind::kCallBlock);
    advance();
    if (is_op("(")) parse_params(n.get());
    NodePtr call = parse_expression(true);
    if (call->kind != NodeKind::kCall) fail_here("expected a call after 'call'");
    n->args.push_back(std::move(call));
    expect_block_end();
    n->body = parse_body({"endcall"});
    advance();
    expect_block_end();
    return n;
  }

  NodePtr parse_filter_block() {
    auto n = node(NodeKind::kFilterBlock);
    advance();
    parse_filter_chain(n->filters, /*leading_pipe=*/false);
    expect_block_end();
    n->body = parse_body({"endfilter"});
    advance();
    expect_block_end();
    return n;
  }

  // transformers' AssistantTracker: {% generation %}...{% endgeneration %} renders its body.
  NodePtr parse_generation() {
    auto n = node(NodeKind::kFilterBlock);
    advance();
    expect_block_end();
    n->body = parse_body({"endgeneration"});
    advance();
    expect_block_end();
    return n;
  }

  void parse_filter_chain(std::vector<NodePtr>& filters, bool leading_pipe = true) {
    bool first = true;
    while (leading_pipe ? is_op("|") : (first || is_op("|"))) {
      if (leading_pipe || !first) advance();
      first = false;
      filters.push_back(parse_filter(nullptr));
    }
  }

  // ---- expressions ----

  bool at_tuple_end(bool for_iter) const {
    if (cur().type == TokenType::kVarEnd || cur().type == TokenType::kBlockEnd) return true;
    if (is_op(")")) return true;
    if (for_iter && (is_name("if") || is_name("recursive"))) return true;
    return false;
  }

  // An expression or a bare tuple (`a, b`). Without condexpr (for loop iterables) a trailing
  // `if` is the loop filter.
  NodePtr parse_tuple(bool with_condexpr, bool explicit_parens) {
    auto n = node(NodeKind::kTuple);
    bool is_tuple = false;
    while (true) {
      if (!n->args.empty()) expect_op(",");
      if (at_tuple_end(!with_condexpr)) break;
      n->args.push_back(parse_expression(with_condexpr));
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!n->args.empty()) return std::move(n->args[0]);
      if (!explicit_parens) fail_here("expected an expression");
    }
    return n;
  }

  NodePtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this);
    if (!with_condexpr) return parse_or();
    NodePtr expr = parse_or();
    while (is_name("if")) {
      auto n = node(NodeKind::kCondExpr);
      advance();
      n->args.push_back(parse_or());
      n->args.push_back(std::move(expr));
      n->args.push_back(skip_name("else") ? parse_expression(true) : nullptr);
      expr = std::move(n);
    }
    return expr;
  }

  NodePtr binary(NodeKind kind, std::string op, NodePtr lhs, NodePtr rhs, int line, int col) {
    auto n = std::make_unique<Node>(kind, line, col);
    n->name = std::move(op);
    n->args.push_back(std::move(lhs));
    n->args.push_back(std::move(rhs));
    return n;
  }

  NodePtr parse_or() {
    NodePtr lhs = parse_and();
    while (is_name("or")) {
      int l = cur().line, c = cur().col;
      advance();
      lhs = binary(NodeKind::kOr, "or", std::move(lhs), parse_and(), l, c);
    }
    return lhs;
  }
  NodePtr parse_and() {
    NodePtr lhs = parse_not();
    while (is_name("and")) {
      int l = cur().line, c = cur().col;
      advance();
      lhs = binary(NodeKind::kAnd, "and", std::move(lhs), parse_not(), l, c);
    }
    return lhs;
  }
  NodePtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      auto n = node(NodeKind::kUnary);
      n->name = "not";
      advance();
      n->args.push_back(parse_not());
      return n;
    }
    return parse_compare();
  }
  NodePtr parse_compare() {
    NodePtr first = parse_math1();
    auto n = node(NodeKind::kCompare);
    n->args.push_back(std::move(first));
    while (true) {
      static const char* kOps[] = {"==", "!=", "<", "<=", ">", ">="};
      std::string op;
      for (const char* o : kOps) {
        if (is_op(o)) op = o;
      }
      if (!op.empty()) {
        advance();
      } else if (is_name("in")) {
        op = "in";
        advance();
      } else if (is_name("not") && peek().type == TokenType::kName && peek().text == "in") {
        op = "not in";
        advance();
        advance();
      } else {
        break;
      }
      n->ops.push_back(op);
      n->args.push_back(parse_math1());
    }
    if (n->ops.empty()) return std::move(n->args[0]);
    return n;
  }
  NodePtr parse_math1() {
    NodePtr lhs = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().text;
      int l = cur().line, c = cur().col;
      advance();
      lhs = binary(NodeKind::kBinary, op, std::move(lhs), parse_concat(), l, c);
    }
    return lhs;
  }
  NodePtr parse_concat() {
    NodePtr lhs = parse_math2();
    while (is_op("~")) {
      int l = cur().line, c = cur().col;
      advance();
      lhs = binary(NodeKind::kBinary, "~", std::move(lhs), parse_math2(), l, c);
    }
    return lhs;
  }
  NodePtr parse_math2() {
    NodePtr lhs = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().text;
      int l = cur().line, c = cur().col;
      advance();
      lhs = binary(NodeKind::kBinary, op, std::move(lhs), parse_pow(), l, c);
    }
    return lhs;
  }
  NodePtr parse_pow() {
    NodePtr lhs = parse_unary(true);
    while (is_op("**")) {
      int l = cur().line, c = cur().col;
      advance();
      lhs = binary(NodeKind::kBinary, "**", std::move(lhs), parse_unary(true), l, c);
    }
    return lhs;
  }
  NodePtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    NodePtr n;
    if (is_op("-") || is_op("+")) {
      n = node(NodeKind::kUnary);
      n->name = cur().text;
      advance();
      n->args.push_back(parse_unary(false));
    } else {
      n = parse_primary();
    }
    n = parse_postfix(std::move(n));
    if (with_filter) n = parse_filter_expr(std::move(n));
    return n;
  }

  NodePtr parse_primary() {
    const Token& t = cur();
    if (t.type == TokenType::kName) {
      auto n = node(NodeKind::kLiteral);
      if (t.text == "true" || t.text == "True") {
        n->literal = Value(true);
      } else if (t.text == "false" || t.text == "False") {
        n->literal = Value(false);
      } else if (t.text == "none" || t.text == "None") {
        n->literal = Value(nullptr);
      } else {
        n->kind = NodeKind::kName;
        n->name = t.text;
      }
      advance();
      return n;
    }
    if (t.type == TokenType::kString) {
      auto n = node(NodeKind::kLiteral);
      std::string s;
      while (cur().type == TokenType::kString) {
        s += cur().text;
        advance();
      }
      n->literal = Value(std::move(s));
      return n;
    }
    if (t.type == TokenType::kInt || t.type == TokenType::kFloat) {
      auto n = node(NodeKind::kLiteral);
      n->literal = t.type == TokenType::kInt ? Value(t.int_value) : Value(t.float_value);
      advance();
      return n;
    }
    if (is_op("(")) {
      advance();
      NodePtr n = parse_tuple(true, true);
      expect_op(")");
      return n;
    }
    if (is_op("[")) {
      auto n = node(NodeKind::kList);
      advance();
      while (!is_op("]")) {
        if (!n->args.empty()) expect_op(",");
        if (is_op("]")) break;
        n->args.push_back(parse_expression(true));
      }
      advance();
      return n;
    }
    if (is_op("{")) {
      auto n = node(NodeKind::kDict);
      advance();
      while (!is_op("}")) {
        if (!n->args.empty()) expect_op(",");
        if (is_op("}")) break;
        n->args.push_back(parse_expression(true));
        expect_op(":");
        n->args.push_back(parse_expression(true));
      }
      advance();
      return n;
    }
    fail_here("expected an expression");
  }

  NodePtr parse_postfix(NodePtr n) {
    while (true) {
      if (is_op(".")) {
        auto a = node(NodeKind::kGetAttr);
        advance();
        if (cur().type == TokenType::kInt) {
          a->kind = NodeKind::kGetItem;
          auto idx = node(NodeKind::kLiteral);
          idx->literal = Value(cur().int_value);
          advance();
          a->args.push_back(std::move(n));
          a->args.push_back(std::move(idx));
        } else {
          a->name = expect_name();
          a->args.push_back(std::move(n));
        }
        n = std::move(a);
      } else if (is_op("[")) {
        n = parse_subscript(std::move(n));
      } else if (is_op("(")) {
        n = parse_call(std::move(n));
      } else {
        return n;
      }
    }
  }

  NodePtr parse_subscript(NodePtr obj) {
    auto n = node(NodeKind::kGetItem);
    advance();
    n->args.push_back(std::move(obj));
    NodePtr first = is_op(":") ? nullptr : parse_expression(true);
    if (is_op(":")) {
      n->kind = NodeKind::kSlice;
      n->args.push_back(std::move(first));
      for (int part = 0; part < 2; ++part) {
        if (!skip_op(":")) {
          n->args.push_back(nullptr);
          continue;
        }
        bool end = is_op("]") || is_op(":");
        n->args.push_back(end ? nullptr : parse_expression(true));
      }
    } else {
      n->args.push_back(std::move(first));
    }
    expect_op("]");
    return n;
  }

  void parse_call_args(Node* n) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) expect_op(",");
      first = false;
      if (is_op(")")) break;
      if (is_op("*") || is_op("**")) fail_here("*args and **kwargs in calls are not supported");
      if (cur().type == TokenType::kName && peek().type == TokenType::kOp && peek().text == "=") {
        std::string key = cur().text;
        advance();
        advance();
        n->kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!n->kwargs.empty()) fail_here("positional argument after keyword argument");
        n->args.push_back(parse_expression(true));
      }
    }
    advance();
  }

  NodePtr parse_call(NodePtr callee) {
    auto n = node(NodeKind::kCall);
    n->args.push_back(std::move(callee));
    parse_call_args(n.get());
    return n;
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (is_op(".")) {
      advance();
      name += '.';
      name += expect_name();
    }
    return name;
  }

  NodePtr parse_filter(NodePtr operand) {
    auto n = node(NodeKind::kFilter);
    n->name = parse_dotted_name();
    if (!has_filter(n->name)) {
      throw_syntax_error(n->line, n->col, fmt::format("no filter named '{}'", n->name));
    }
    n->args.push_back(std::move(operand));
    if (is_op("(")) parse_call_args(n.get());
    return n;
  }

  NodePtr parse_filter_expr(NodePtr n) {
    while (true) {
      if (is_op("|")) {
        advance();
        n = parse_filter(std::move(n));
      } else if (is_name("is")) {
        advance();
        auto t = node(NodeKind::kTest);
        t->negated = skip_name("not");
        t->name = parse_dotted_name();
        if (!has_test(t->name)) {
          throw_syntax_error(t->line, t->col, fmt::format("no test named '{}'", t->name));
        }
        t->args.push_back(std::move(n));
        TokenType ty = cur().type;
        if (is_op("(")) {
          parse_call_args(t.get());
        } else if ((ty == TokenType::kName || ty == TokenType::kString || ty == TokenType::kInt ||
                    ty == TokenType::kFloat || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
          if (is_name("is")) fail_here("tests cannot be chained with 'is'");
          t->args.push_back(parse_postfix(parse_primary()));
        }
        n = std::move(t);
      } else if (is_op("(")) {
        n = parse_call(std::move(n));
      } else {
        return n;
      }
    }
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

std::shared_ptr<const Program> parse_program(std::string_view source, const Options& options) {
  return Parser(tokenize(source, options)).run();
}

}  // namespace kpt::jinja
