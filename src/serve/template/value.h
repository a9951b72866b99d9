// Runtime values of the Jinja-compatible template engine, with Python semantics: the engine's
// oracle is jinja2 as transformers configures it, so printing, truthiness, equality, ordering and
// JSON output follow what CPython does with the same objects.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace kpt::jinja {

class Value;

// A list, or a tuple (printed with parentheses, e.g. what dict.items() yields).
struct List {
  std::vector<Value> items;
  bool is_tuple = false;
  // "dict_items", "dict_keys" or "dict_values" for what dict.items()/keys()/values() return:
  // printed like CPython's views, not subscriptable, not JSON-serializable.
  const char* view = nullptr;
};

// An insertion-ordered mapping with string keys (JSON objects, dict literals, namespace()).
// Lookups are linear: chat-template dicts hold a handful of keys.
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;
  const Value* find(std::string_view key) const;
  void set(std::string key, Value value);
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// Globals, bound methods (`'a b'.split`), macros and `caller`.
struct Function {
  std::string name;
  std::function<Value(CallArgs&)> call;
};

// jinja2's default Undefined: prints as "", is falsy, iterates as empty; using it in arithmetic,
// attribute access, subscripts or calls raises with `hint` ("'foo' is undefined").
struct Undefined {
  std::string hint;
};

class Value {
 public:
  using ListPtr = std::shared_ptr<List>;
  using DictPtr = std::shared_ptr<Dict>;
  using FunctionPtr = std::shared_ptr<Function>;

  Value() : v_(Undefined{}) {}
  Value(std::nullptr_t) : v_(nullptr) {}
  Value(bool b) : v_(b) {}
  Value(int64_t i) : v_(i) {}
  Value(int i) : v_(int64_t{i}) {}
  Value(double f) : v_(f) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(ListPtr l) : v_(std::move(l)) {}
  Value(DictPtr d) : v_(std::move(d)) {}
  Value(FunctionPtr f) : v_(std::move(f)) {}
  Value(Undefined u) : v_(std::move(u)) {}

  static Value undefined(std::string hint) { return Value(Undefined{std::move(hint)}); }
  static Value list(std::vector<Value> items = {}, bool is_tuple = false);
  static Value dict();
  static Value from_json(const nlohmann::ordered_json& j);

  bool is_undefined() const { return std::holds_alternative<Undefined>(v_); }
  bool is_none() const { return std::holds_alternative<std::nullptr_t>(v_); }
  bool is_bool() const { return std::holds_alternative<bool>(v_); }
  bool is_int() const { return std::holds_alternative<int64_t>(v_); }
  bool is_float() const { return std::holds_alternative<double>(v_); }
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_list() const { return std::holds_alternative<ListPtr>(v_); }
  bool is_dict() const { return std::holds_alternative<DictPtr>(v_); }
  bool is_function() const { return std::holds_alternative<FunctionPtr>(v_); }
  // A plain mapping (not a namespace): what `is mapping` accepts.
  bool is_mapping() const { return is_dict() && !as_dict().is_namespace; }

  // Typed access; a wrong type throws kpt::Error(kInvalidArgument) "expected int, got str"
  // (templates pass anything anywhere, so this is a caller error, not an invariant).
  bool as_bool() const { return get<bool>("bool"); }
  int64_t as_int() const { return get<int64_t>("int"); }
  double as_float() const { return get<double>("float"); }
  const std::string& as_string() const { return get<std::string>("str"); }
  List& as_list() const { return *get<ListPtr>("list"); }
  Dict& as_dict() const { return *get<DictPtr>("dict"); }
  Function& as_function() const { return *get<FunctionPtr>("function"); }
  const Undefined& as_undefined() const { return get<Undefined>("Undefined"); }
  // Moves the string out of a string value (lets `a + b` append in place).
  std::string take_string() && { return std::move(std::get<std::string>(v_)); }
  // Numeric view of bool/int/float (Python: True + 1 == 2).
  double to_double() const;

  bool truthy() const;
  // Python type name for error messages: 'int', 'str', 'list', 'dict', 'NoneType', ...
  const char* type_name() const;
  // str(value) as jinja2 prints it ({{ x }}): strings raw, everything else like Python.
  std::string str() const;
  // repr(value), as Python prints list/dict elements.
  std::string repr() const;
  // json.dumps(value, ensure_ascii, indent, sort_keys) with Python's separators.
  std::string to_json(bool ensure_ascii, int indent, bool sort_keys) const;
  // The same, but `indent_str` is the per-level indent (json.dumps accepts a string).
  std::string to_json(bool ensure_ascii, const std::string* indent_str, bool sort_keys) const;

 private:
  template <typename T>
  const T& get(const char* expected) const {
    if (const T* p = std::get_if<T>(&v_)) return *p;
    throw_type_error(expected, type_name());
  }
  [[noreturn]] static void throw_type_error(const char* expected, const char* got);

  std::variant<Undefined, std::nullptr_t, bool, int64_t, double, std::string, ListPtr, DictPtr,
               FunctionPtr>
      v_;
};

// Python ==, and the ordering behind <, sorted() and min/max (throws for unorderable types).
bool values_equal(const Value& a, const Value& b);
int compare_values(const Value& a, const Value& b, bool case_sensitive = true);

// Python's repr() of a float: shortest round-trip digits, exponent outside [1e-4, 1e16).
std::string format_python_float(double f);

// UTF-8 helpers: Python indexes strings by code point.
std::vector<uint32_t> utf8_decode(std::string_view s);
std::string utf8_encode(const std::vector<uint32_t>& cps, size_t begin, size_t end);
size_t utf8_length(std::string_view s);

// Python's str.lower/upper/capitalize/title for ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic
// and fullwidth Latin (ß upper-cases to "SS"); other code points are unchanged, and Greek final
// sigma is not special-cased.
std::string str_lower(std::string_view s);
std::string str_upper(std::string_view s);
std::string str_capitalize(std::string_view s);
std::string str_title(std::string_view s);
// jinja2's |title: words start after whitespace or one of "-({[<"; each is capitalized.
std::string jinja_title(std::string_view s);

// Throws kpt::Error(kInvalidArgument) with "template error: <message>".
[[noreturn]] void throw_render_error(const std::string& message);

}  // namespace kpt::jinja
