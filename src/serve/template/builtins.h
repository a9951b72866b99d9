// Filters, tests, globals and the Python methods of str/dict/list that templates call.
#pragma once

#include <string>

#include "serve/template/value.h"

namespace kpt::jinja {

using FilterFn = Value (*)(const Value& operand, CallArgs& args);
using TestFn = bool (*)(const Value& operand, CallArgs& args);

// nullptr when unknown.
FilterFn find_filter(const std::string& name);
TestFn find_test(const std::string& name);

// jinja2's getattr(obj, name): Python attributes first (methods of str/dict/list, as bound
// functions), then items. Returns an undefined value naming what was missing.
Value get_attribute(const Value& obj, const std::string& name);
// jinja2's getitem(obj, key): items first, then attributes for string keys.
Value get_item(const Value& obj, const Value& key);
// Python slicing of list/tuple/str.
Value slice_value(const Value& obj, const Value& start, const Value& stop, const Value& step);

// Python's `format % args` (printf-style): %s %r %d %i %f %F %e %E %g %G %x %X %o %c %% with
// flags, width, precision and %(key)s; a tuple supplies positional arguments, a dict keys.
std::string percent_format(const std::string& format, const Value& args);

// Python's iter(): list items, dict keys, string characters; undefined iterates as empty.
std::vector<Value> iterate(const Value& v);

// The globals of transformers' environment: range, namespace, dict, raise_exception,
// strftime_now (plus jinja2's cycler-free defaults that chat templates use).
void add_globals(Dict& globals);

// raise_exception(message): carries the template's message verbatim.
class TemplateRaised : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads positional-or-keyword arguments the way Python binds them; rejects unknown keywords.
class ArgReader {
 public:
  ArgReader(CallArgs& args, const char* function, std::initializer_list<const char*> names);
  // The argument at `index` (positional) or named `names[index]`, else `fallback`.
  Value get(size_t index, Value fallback = Value()) const;
  bool has(size_t index) const;

 private:
  CallArgs& args_;
  std::vector<const char*> names_;
};

}  // namespace kpt::jinja
