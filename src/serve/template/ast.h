// Syntax tree of a parsed template: one node type for expressions and statements keeps the
// parser and evaluator short; `kind` says which fields are used.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "serve/template/value.h"

namespace kpt::jinja {

enum class NodeKind {
  // Expressions
  kLiteral,   // literal
  kName,      // name
  kList,      // args
  kTuple,     // args
  kDict,      // args: key0, value0, key1, value1, ...
  kGetAttr,   // args[0].name
  kGetItem,   // args[0][args[1]]
  kSlice,     // args[0][args[1]:args[2]:args[3]] (null when omitted)
  kCall,      // args[0](args[1..], kwargs)
  kFilter,    // args[0] | name(args[1..], kwargs); args[0] is null inside filter blocks
  kTest,      // args[0] is [not] name(args[1..], kwargs); negated
  kUnary,     // name in {"-", "+", "not"} applied to args[0]
  kBinary,    // args[0] name args[1] for + - * / // % ** ~
  kCompare,   // args[0] ops[0] args[1] ops[1] args[2] ... (chained like Python)
  kAnd,       // args[0] and args[1]
  kOr,        // args[0] or args[1]
  kCondExpr,  // args[1] if args[0] else args[2] (args[2] null: undefined)
  // Statements
  kText,         // name: template data
  kOutput,       // {{ args[0] }}
  kIf,           // args: conditions; branches: bodies (one per condition); else_body
  kFor,          // targets in args[0] [if args[1]]: body, else_body
  kSet,          // targets = args[0], or name.attr = args[0] when `attr` is set
  kSetBlock,     // targets = rendered body, through filters (kFilter nodes, null operand)
  kMacro,        // name(params = defaults): body
  kCallBlock,    // {% call(params) args[0] %} body: args[0] receives caller()
  kFilterBlock,  // body through filters
  kBreak,
  kContinue,
};

struct Node;
using NodePtr = std::unique_ptr<Node>;

struct Node {
  NodeKind kind;
  int line = 0;
  int col = 0;
  std::string name;
  std::string attr;  // kSet on a namespace attribute
  Value literal;
  bool negated = false;
  std::vector<NodePtr> args;
  std::vector<std::pair<std::string, NodePtr>> kwargs;
  std::vector<std::string> ops;      // kCompare
  std::vector<std::string> targets;  // kFor, kSet, kSetBlock, kMacro/kCallBlock parameter names
  std::vector<NodePtr> defaults;     // kMacro/kCallBlock: default per parameter (null: required)
  std::vector<NodePtr> filters;      // kSetBlock, kFilterBlock
  std::vector<std::vector<NodePtr>> branches;  // kIf
  std::vector<NodePtr> body;
  std::vector<NodePtr> else_body;

  Node(NodeKind k, int l, int c) : kind(k), line(l), col(c) {}
};

// A parsed template: the statement list of the top level.
struct Program {
  std::vector<NodePtr> body;
};

struct Options;
std::shared_ptr<const Program> parse_program(std::string_view source, const Options& options);

// Whether a filter or test of that name exists (the parser rejects unknown ones, as jinja2 does).
bool has_filter(const std::string& name);
bool has_test(const std::string& name);

}  // namespace kpt::jinja
