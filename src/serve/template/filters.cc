// jinja2's builtin filters and tests that chat templates use, with jinja2's argument names and
// defaults (e.g. sort/unique compare case-insensitively unless told otherwise), plus
// transformers' tojson (json.dumps with ensure_ascii=False).
#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "kpt/status.h"
#include "serve/template/ast.h"
#include "serve/template/builtins.h"

namespace kpt::jinja {
namespace {

using A = CallArgs;

int64_t length_of(const Value& v) {
  if (v.is_undefined()) return 0;
  if (v.is_string()) return static_cast<int64_t>(utf8_length(v.as_string()));
  if (v.is_list()) return static_cast<int64_t>(v.as_list().items.size());
  if (v.is_mapping()) return static_cast<int64_t>(v.as_dict().items.size());
  throw_render_error(fmt::format("object of type '{}' has no len()", v.type_name()));
}

std::string to_lower(const std::string& s) {
  return str_lower(s);
}
std::string to_upper(const std::string& s) {
  return str_upper(s);
}

// jinja2 attribute paths: "a.b.0" walks attributes/items.
Value get_path(const Value& v, const Value& path) {
  if (path.is_int()) return get_item(v, path);
  std::string p = path.str();
  Value cur = v;
  size_t start = 0;
  while (true) {
    size_t dot = p.find('.', start);
    std::string part = p.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    cur = numeric ? get_item(cur, Value(static_cast<int64_t>(std::stoll(part))))
                  : get_item(cur, Value(part));
    if (dot == std::string::npos) return cur;
    if (cur.is_undefined()) return cur;
    start = dot + 1;
  }
}

Value f_abs(const Value& v, A& a) {
  ArgReader ar(a, "abs", {});
  if (v.is_int()) return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
  if (v.is_bool()) return Value(int64_t{v.as_bool()});
  if (v.is_float()) return Value(std::fabs(v.as_float()));
  throw_render_error(fmt::format("bad operand type for abs(): '{}'", v.type_name()));
}
Value f_attr(const Value& v, A& a) {
  ArgReader ar(a, "attr", {"name"});
  return get_attribute(v, ar.get(0).str());
}
Value f_batch(const Value& v, A& a) {
  ArgReader ar(a, "batch", {"linecount", "fill_with"});
  Value n = ar.get(0);
  if (!n.is_int() || n.as_int() <= 0)
    throw_render_error("batch: linecount must be a positive integer");
  std::vector<Value> out, cur;
  for (Value& x : iterate(v)) {
    cur.push_back(std::move(x));
    if (static_cast<int64_t>(cur.size()) == n.as_int())
      out.push_back(Value::list(std::exchange(cur, {})));
  }
  if (!cur.empty()) {
    if (ar.has(1)) {
      while (static_cast<int64_t>(cur.size()) < n.as_int()) cur.push_back(ar.get(1));
    }
    out.push_back(Value::list(std::move(cur)));
  }
  return Value::list(std::move(out));
}
Value f_capitalize(const Value& v, A& a) {
  ArgReader ar(a, "capitalize", {});
  return Value(str_capitalize(v.str()));
}
Value f_center(const Value& v, A& a) {
  ArgReader ar(a, "center", {"width"});
  std::string s = v.str();
  int64_t width = ar.get(0, Value(80)).as_int();
  auto len = static_cast<int64_t>(utf8_length(s));
  if (width <= len) return Value(s);
  int64_t total = width - len;
  // CPython str.center: the extra space goes left when the string length is odd.
  int64_t left = total / 2 + (total & width & 1);
  return Value(std::string(static_cast<size_t>(left), ' ') + s +
               std::string(static_cast<size_t>(total - left), ' '));
}
Value f_length(const Value& v, A& a) {
  ArgReader ar(a, "length", {});
  return Value(length_of(v));
}
Value f_default(const Value& v, A& a) {
  ArgReader ar(a, "default", {"default_value", "boolean"});
  bool boolean = ar.get(1, Value(false)).truthy();
  if (v.is_undefined() || (boolean && !v.truthy())) return ar.get(0, Value(""));
  return v;
}
Value f_dictsort(const Value& v, A& a) {
  ArgReader ar(a, "dictsort", {"case_sensitive", "by", "reverse"});
  if (!v.is_mapping()) throw_render_error("dictsort: expected a mapping");
  bool cs = ar.get(0, Value(false)).truthy();
  bool by_value = ar.get(1, Value("key")).str() == "value";
  bool rev = ar.get(2, Value(false)).truthy();
  std::vector<Value> items;
  for (const auto& [k, x] : v.as_dict().items) items.push_back(Value::list({Value(k), x}, true));
  std::stable_sort(items.begin(), items.end(), [&](const Value& p, const Value& q) {
    int c = compare_values(p.as_list().items[by_value], q.as_list().items[by_value], cs);
    return rev ? c > 0 : c < 0;
  });
  return Value::list(std::move(items));
}
Value f_escape(const Value& v, A& a) {
  ArgReader ar(a, "escape", {});
  std::string out;
  for (char c : v.str()) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return Value(out);
}
Value f_first(const Value& v, A& a) {
  ArgReader ar(a, "first", {});
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}
Value f_last(const Value& v, A& a) {
  ArgReader ar(a, "last", {});
  if (v.is_mapping()) throw_render_error("'dict' object is not reversible");
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}
Value f_float(const Value& v, A& a) {
  ArgReader ar(a, "float", {"default"});
  if (v.is_undefined()) throw_render_error(v.as_undefined().hint);
  if (v.is_number()) return Value(v.to_double());
  if (v.is_string()) {
    const std::string& s = v.as_string();
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    while (end && *end && std::isspace(static_cast<unsigned char>(*end))) ++end;
    if (!s.empty() && end && *end == '\0') return Value(d);
  }
  return ar.get(0, Value(0.0));
}
Value f_int(const Value& v, A& a) {
  ArgReader ar(a, "int", {"default", "base"});
  if (v.is_int()) return v;
  if (v.is_bool()) return Value(int64_t{v.as_bool()});
  if (v.is_float()) {
    if (!std::isfinite(v.as_float())) return ar.get(0, Value(0));
    return Value(static_cast<int64_t>(std::trunc(v.as_float())));
  }
  if (v.is_undefined()) throw_render_error(v.as_undefined().hint);
  if (v.is_string()) {
    std::string s = v.as_string();
    errno = 0;
    char* end = nullptr;
    long long i = std::strtoll(s.c_str(), &end, static_cast<int>(ar.get(1, Value(10)).as_int()));
    while (end && *end && std::isspace(static_cast<unsigned char>(*end))) ++end;
    if (!s.empty() && end && *end == '\0' && errno == 0) return Value(static_cast<int64_t>(i));
    // jinja2 falls back to int(float(s)).
    char* fend = nullptr;
    double d = std::strtod(s.c_str(), &fend);
    while (fend && *fend && std::isspace(static_cast<unsigned char>(*fend))) ++fend;
    if (!s.empty() && fend && *fend == '\0' && std::isfinite(d))
      return Value(static_cast<int64_t>(std::trunc(d)));
  }
  return ar.get(0, Value(0));
}
Value f_format(const Value& v, A& a) {
  // jinja2: value % (kwargs or args).
  if (!a.positional.empty() && !a.keyword.empty()) {
    throw_render_error("format: can't handle positional and keyword arguments at the same time");
  }
  if (!a.keyword.empty()) {
    auto d = std::make_shared<Dict>();
    d->items = a.keyword;
    return Value(percent_format(v.str(), Value(std::move(d))));
  }
  return Value(percent_format(v.str(), Value::list(a.positional, true)));
}
Value f_indent(const Value& v, A& a) {
  ArgReader ar(a, "indent", {"width", "first", "blank"});
  Value w = ar.get(0, Value(4));
  std::string pad = w.is_string()
                        ? w.as_string()
                        : std::string(static_cast<size_t>(std::max<int64_t>(w.as_int(), 0)), ' ');
  bool first = ar.get(1, Value(false)).truthy();
  bool blank = ar.get(2, Value(false)).truthy();
  if (!v.is_string() && !v.is_undefined()) {
    throw_render_error(fmt::format("indent: expected a string, got {}", v.type_name()));
  }
  std::string s = v.str();
  std::string out;
  size_t start = 0;
  bool is_first = true;
  while (true) {
    size_t nl = s.find('\n', start);
    std::string line = s.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    bool pad_it = is_first ? first : (blank || !line.empty());
    if (!is_first) out += '\n';
    if (pad_it) out += pad;
    out += line;
    is_first = false;
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return Value(out);
}
Value f_items(const Value& v, A& a) {
  ArgReader ar(a, "items", {});
  if (v.is_undefined()) return Value::list();
  if (!v.is_mapping())
    throw_render_error(
        fmt::format("items: can only get item pairs from a mapping, got {}", v.type_name()));
  std::vector<Value> out;
  for (const auto& [k, x] : v.as_dict().items) out.push_back(Value::list({Value(k), x}, true));
  return Value::list(std::move(out));
}
Value f_join(const Value& v, A& a) {
  ArgReader ar(a, "join", {"d", "attribute"});
  std::string sep = ar.get(0, Value("")).str();
  Value attr = ar.get(1, Value(nullptr));
  std::string out;
  bool first = true;
  for (const Value& x : iterate(v)) {
    if (!first) out += sep;
    first = false;
    out += attr.is_none() ? x.str() : get_path(x, attr).str();
  }
  return Value(out);
}
Value f_list(const Value& v, A& a) {
  ArgReader ar(a, "list", {});
  return Value::list(iterate(v));
}
Value f_lower(const Value& v, A& a) {
  ArgReader ar(a, "lower", {});
  return Value(to_lower(v.str()));
}
Value f_upper(const Value& v, A& a) {
  ArgReader ar(a, "upper", {});
  return Value(to_upper(v.str()));
}
Value f_map(const Value& v, A& a) {
  std::vector<Value> out;
  if (!v.truthy()) return Value::list();  // jinja2 yields nothing for falsy input (0, none, false)
  Value attribute;
  Value fallback;
  bool has_default = false;
  for (auto& [k, x] : a.keyword) {
    if (k == "attribute") {
      attribute = x;
    } else if (k == "default") {
      fallback = x;
      has_default = true;
    } else if (a.positional.empty()) {
      throw_render_error(fmt::format("map() got an unexpected keyword argument '{}'", k));
    }
  }
  if (!attribute.is_undefined()) {
    for (const Value& x : iterate(v)) {
      Value r = get_path(x, attribute);
      out.push_back(r.is_undefined() && has_default ? fallback : r);
    }
    return Value::list(std::move(out));
  }
  if (a.positional.empty()) throw_render_error("map: expected a filter name or attribute=");
  std::string name = a.positional[0].str();
  FilterFn f = find_filter(name);
  if (!f) throw_render_error(fmt::format("no filter named '{}'", name));
  for (const Value& x : iterate(v)) {
    CallArgs rest;
    rest.positional.assign(a.positional.begin() + 1, a.positional.end());
    rest.keyword = a.keyword;
    out.push_back(f(x, rest));
  }
  return Value::list(std::move(out));
}
Value minmax(const Value& v, A& a, bool is_max) {
  ArgReader ar(a, is_max ? "max" : "min", {"case_sensitive", "attribute"});
  bool cs = ar.get(0, Value(false)).truthy();
  Value attr = ar.get(1, Value(nullptr));
  std::vector<Value> items = iterate(v);
  if (items.empty())
    return Value::undefined(fmt::format("No aggregated item, sequence was empty."));
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    Value x = attr.is_none() ? items[i] : get_path(items[i], attr);
    Value y = attr.is_none() ? items[best] : get_path(items[best], attr);
    int c = compare_values(x, y, cs);
    if (is_max ? c > 0 : c < 0) best = i;
  }
  return items[best];
}
Value f_max(const Value& v, A& a) {
  return minmax(v, a, true);
}
Value f_min(const Value& v, A& a) {
  return minmax(v, a, false);
}

// select/reject(seq, test, *args) and selectattr/rejectattr(seq, attr, test, *args).
Value select_impl(const Value& v, A& a, bool by_attr, bool keep) {
  size_t at = 0;
  Value attr;
  if (by_attr) {
    if (a.positional.empty()) throw_render_error("selectattr/rejectattr: missing attribute");
    attr = a.positional[at++];
  }
  TestFn test = nullptr;
  if (at < a.positional.size()) {
    std::string name = a.positional[at++].str();
    test = find_test(name);
    if (!test) throw_render_error(fmt::format("no test named '{}'", name));
  }
  std::vector<Value> out;
  if (!v.truthy()) return Value::list();  // jinja2 yields nothing for falsy input (0, none, false)
  for (const Value& x : iterate(v)) {
    Value probe = by_attr ? get_path(x, attr) : x;
    CallArgs rest;
    rest.positional.assign(a.positional.begin() + static_cast<std::ptrdiff_t>(at),
                           a.positional.end());
    rest.keyword = a.keyword;
    bool ok = test ? test(probe, rest) : probe.truthy();
    if (ok == keep) out.push_back(x);
  }
  return Value::list(std::move(out));
}
Value f_select(const Value& v, A& a) {
  return select_impl(v, a, false, true);
}
Value f_reject(const Value& v, A& a) {
  return select_impl(v, a, false, false);
}
Value f_selectattr(const Value& v, A& a) {
  return select_impl(v, a, true, true);
}
Value f_rejectattr(const Value& v, A& a) {
  return select_impl(v, a, true, false);
}

Value f_replace(const Value& v, A& a) {
  ArgReader ar(a, "replace", {"old", "new", "count"});
  CallArgs inner;
  inner.positional = {ar.get(0).str(), ar.get(1).str()};
  Value c = ar.get(2, Value(nullptr));
  if (!c.is_none()) inner.positional.push_back(c);
  Value method = get_attribute(Value(v.str()), "replace");
  return method.as_function().call(inner);
}
Value f_reverse(const Value& v, A& a) {
  ArgReader ar(a, "reverse", {});
  if (v.is_string()) {
    std::vector<uint32_t> cps = utf8_decode(v.as_string());
    std::reverse(cps.begin(), cps.end());
    return Value(utf8_encode(cps, 0, cps.size()));
  }
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}
Value f_round(const Value& v, A& a) {
  ArgReader ar(a, "round", {"precision", "method"});
  int64_t precision = ar.get(0, Value(0)).as_int();
  std::string method = ar.get(1, Value("common")).str();
  if (!v.is_number())
    throw_render_error(fmt::format("round: expected a number, got {}", v.type_name()));
  double x = v.to_double();
  double scale = std::pow(10.0, static_cast<double>(precision));
  if (method == "common") {
    // Python's round(): an int stays an int; floats round half to even.
    if (!v.is_float() && precision >= 0) return v.is_bool() ? Value(int64_t{v.as_bool()}) : v;
    return Value(std::nearbyint(x * scale) / scale);
  }
  if (method == "ceil") return Value(std::ceil(x * scale) / scale);
  if (method == "floor") return Value(std::floor(x * scale) / scale);
  throw_render_error("round: method must be 'common', 'ceil' or 'floor'");
}
Value f_safe(const Value& v, A& a) {
  ArgReader ar(a, "safe", {});
  return v;
}
Value f_string(const Value& v, A& a) {
  ArgReader ar(a, "string", {});
  return Value(v.str());
}
Value f_sum(const Value& v, A& a) {
  ArgReader ar(a, "sum", {"attribute", "start"});
  Value attr = ar.get(0, Value(nullptr));
  Value total = ar.get(1, Value(0));
  for (const Value& x : iterate(v)) {
    Value y = attr.is_none() ? x : get_path(x, attr);
    if (!y.is_number() || !total.is_number()) throw_render_error("sum: can only add numbers");
    if ((total.is_int() || total.is_bool()) && (y.is_int() || y.is_bool())) {
      total = Value((total.is_bool() ? total.as_bool() : total.as_int()) +
                    (y.is_bool() ? y.as_bool() : y.as_int()));
    } else {
      total = Value(total.to_double() + y.to_double());
    }
  }
  return total;
}
Value f_sort(const Value& v, A& a) {
  ArgReader ar(a, "sort", {"reverse", "case_sensitive", "attribute"});
  bool rev = ar.get(0, Value(false)).truthy();
  bool cs = ar.get(1, Value(false)).truthy();
  Value attr = ar.get(2, Value(nullptr));
  std::vector<Value> items = iterate(v);
  std::vector<Value> keys;
  for (const Value& x : items) keys.push_back(attr.is_none() ? x : get_path(x, attr));
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t p, size_t q) {
    int c = compare_values(keys[p], keys[q], cs);
    return rev ? c > 0 : c < 0;
  });
  std::vector<Value> out;
  for (size_t i : order) out.push_back(items[i]);
  return Value::list(std::move(out));
}
Value f_title(const Value& v, A& a) {
  ArgReader ar(a, "title", {});
  return Value(jinja_title(v.str()));
}
Value f_tojson(const Value& v, A& a) {
  ArgReader ar(a, "tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});
  bool ensure_ascii = ar.get(0, Value(false)).truthy();
  Value indent = ar.get(1, Value(nullptr));
  if (!ar.get(2, Value(nullptr)).is_none())
    throw_render_error("tojson: separators= is not supported");
  bool sort_keys = ar.get(3, Value(false)).truthy();
  if (indent.is_none()) return Value(v.to_json(ensure_ascii, -1, sort_keys));
  if (indent.is_string()) return Value(v.to_json(ensure_ascii, &indent.as_string(), sort_keys));
  if (!indent.is_int()) throw_render_error("tojson: indent must be an integer or a string");
  return Value(v.to_json(ensure_ascii,
                         static_cast<int>(std::clamp<int64_t>(indent.as_int(), 0, 64)), sort_keys));
}
Value f_truncate(const Value& v, A& a) {
  ArgReader ar(a, "truncate", {"length", "killwords", "end", "leeway"});
  std::vector<uint32_t> cps = utf8_decode(v.str());
  int64_t length = ar.get(0, Value(255)).as_int();
  bool killwords = ar.get(1, Value(false)).truthy();
  std::string end = ar.get(2, Value("...")).str();
  int64_t leeway = ar.get(3, Value(5)).as_int();  // jinja2's default policy truncate.leeway
  auto end_len = static_cast<int64_t>(utf8_length(end));
  if (length < end_len)
    throw_render_error(fmt::format("expected length >= {}, got {}", end_len, length));
  if (leeway < 0) throw_render_error(fmt::format("expected leeway >= 0, got {}", leeway));
  if (static_cast<int64_t>(cps.size()) <= length + leeway) return Value(v.str());
  std::string head = utf8_encode(cps, 0, static_cast<size_t>(length - end_len));
  if (killwords) return Value(head + end);
  size_t space = head.rfind(' ');
  if (space != std::string::npos) head.resize(space);
  return Value(head + end);
}
Value f_trim(const Value& v, A& a) {
  ArgReader ar(a, "trim", {"chars"});
  CallArgs inner;
  inner.positional.push_back(ar.get(0, Value(nullptr)));
  return get_attribute(Value(v.str()), "strip").as_function().call(inner);
}
Value f_unique(const Value& v, A& a) {
  ArgReader ar(a, "unique", {"case_sensitive", "attribute"});
  bool cs = ar.get(0, Value(false)).truthy();
  Value attr = ar.get(1, Value(nullptr));
  std::vector<Value> out, seen;
  for (const Value& x : iterate(v)) {
    Value key = attr.is_none() ? x : get_path(x, attr);
    if (!cs && key.is_string()) key = Value(to_lower(key.as_string()));
    bool dup =
        std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return values_equal(s, key); });
    if (dup) continue;
    seen.push_back(key);
    out.push_back(x);
  }
  return Value::list(std::move(out));
}
Value f_wordcount(const Value& v, A& a) {
  ArgReader ar(a, "wordcount", {});
  int64_t n = 0;
  bool in_word = false;
  for (char c : v.str()) {
    bool w = std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
             static_cast<unsigned char>(c) >= 0x80;
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value(n);
}

const std::map<std::string, FilterFn>& filters() {
  static const std::map<std::string, FilterFn> kFilters = {
      {"abs", f_abs},           {"attr", f_attr},
      {"batch", f_batch},       {"capitalize", f_capitalize},
      {"center", f_center},     {"count", f_length},
      {"d", f_default},         {"default", f_default},
      {"dictsort", f_dictsort}, {"e", f_escape},
      {"escape", f_escape},     {"first", f_first},
      {"float", f_float},       {"forceescape", f_escape},
      {"format", f_format},     {"indent", f_indent},
      {"int", f_int},           {"items", f_items},
      {"join", f_join},         {"last", f_last},
      {"length", f_length},     {"list", f_list},
      {"lower", f_lower},       {"map", f_map},
      {"max", f_max},           {"min", f_min},
      {"reject", f_reject},     {"rejectattr", f_rejectattr},
      {"replace", f_replace},   {"reverse", f_reverse},
      {"round", f_round},       {"safe", f_safe},
      {"select", f_select},     {"selectattr", f_selectattr},
      {"sort", f_sort},         {"string", f_string},
      {"sum", f_sum},           {"title", f_title},
      {"tojson", f_tojson},     {"trim", f_trim},
      {"truncate", f_truncate}, {"unique", f_unique},
      {"upper", f_upper},       {"wordcount", f_wordcount},
  };
  return kFilters;
}

// ---- tests ----

bool one_arg(A& a, const char* name, Value& out) {
  ArgReader ar(a, name, {"other"});
  if (!ar.has(0)) throw_render_error(fmt::format("test '{}' needs an argument", name));
  out = ar.get(0);
  return true;
}
bool no_args(A& a, const char* name) {
  ArgReader ar(a, name, {});
  return true;
}
bool t_defined(const Value& v, A& a) {
  return no_args(a, "defined") && !v.is_undefined();
}
bool t_undefined(const Value& v, A& a) {
  return no_args(a, "undefined") && v.is_undefined();
}
bool t_none(const Value& v, A& a) {
  return no_args(a, "none") && v.is_none();
}
bool t_boolean(const Value& v, A& a) {
  return no_args(a, "boolean") && v.is_bool();
}
bool t_true(const Value& v, A& a) {
  return no_args(a, "true") && v.is_bool() && v.as_bool();
}
bool t_false(const Value& v, A& a) {
  return no_args(a, "false") && v.is_bool() && !v.as_bool();
}
bool t_string(const Value& v, A& a) {
  return no_args(a, "string") && v.is_string();
}
bool t_number(const Value& v, A& a) {
  return no_args(a, "number") && v.is_number();
}
bool t_integer(const Value& v, A& a) {
  return no_args(a, "integer") && v.is_int();
}
bool t_float(const Value& v, A& a) {
  return no_args(a, "float") && v.is_float();
}
bool t_mapping(const Value& v, A& a) {
  return no_args(a, "mapping") && v.is_mapping();
}
bool t_iterable(const Value& v, A& a) {
  return no_args(a, "iterable") &&
         (v.is_undefined() || v.is_string() || v.is_list() || v.is_mapping());
}
bool t_sequence(const Value& v, A& a) {
  return no_args(a, "sequence") &&
         (v.is_string() || (v.is_list() && !v.as_list().view) || v.is_mapping());
}
// jinja2's Undefined defines __call__ (to raise), so an undefined value is callable.
bool t_callable(const Value& v, A& a) {
  return no_args(a, "callable") && (v.is_function() || v.is_undefined());
}
bool t_escaped(const Value& v, A& a) {
  return no_args(a, "escaped") && false;
}
// jinja2: str(value).islower() / isupper(), the str methods' semantics.
bool str_predicate(const Value& v, const char* method) {
  CallArgs none;
  return get_attribute(Value(v.str()), method).as_function().call(none).truthy();
}
bool t_lower(const Value& v, A& a) {
  return no_args(a, "lower") && str_predicate(v, "islower");
}
bool t_upper(const Value& v, A& a) {
  return no_args(a, "upper") && str_predicate(v, "isupper");
}
// value % divisor with Python semantics for ints and floats (odd/even/divisibleby accept both).
double py_mod(const Value& v, const Value& divisor, const char* test) {
  if (!v.is_number() || !divisor.is_number()) {
    throw_render_error(fmt::format("test '{}': unsupported operand type(s) for %: '{}' and '{}'",
                                   test, v.type_name(), divisor.type_name()));
  }
  double y = divisor.to_double();
  if (y == 0) throw_render_error("integer division or modulo by zero");
  if (!v.is_float() && !divisor.is_float()) {
    int64_t a = v.is_bool() ? v.as_bool() : v.as_int();
    int64_t b = divisor.is_bool() ? divisor.as_bool() : divisor.as_int();
    if (b == -1) return 0;
    int64_t r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return static_cast<double>(r);
  }
  double r = std::fmod(v.to_double(), y);
  if (r != 0 && ((r < 0) != (y < 0))) r += y;
  return r;
}
bool t_odd(const Value& v, A& a) {
  return no_args(a, "odd") && py_mod(v, Value(2), "odd") == 1;
}
bool t_even(const Value& v, A& a) {
  return no_args(a, "even") && py_mod(v, Value(2), "even") == 0;
}
bool t_divisibleby(const Value& v, A& a) {
  Value n;
  one_arg(a, "divisibleby", n);
  return py_mod(v, n, "divisibleby") == 0;
}
bool t_eq(const Value& v, A& a) {
  Value o;
  one_arg(a, "eq", o);
  return values_equal(v, o);
}
bool t_ne(const Value& v, A& a) {
  return !t_eq(v, a);
}
int cmp_arg(const Value& v, A& a, const char* name) {
  Value o;
  one_arg(a, name, o);
  return compare_values(v, o);
}
bool t_lt(const Value& v, A& a) {
  return cmp_arg(v, a, "lt") < 0;
}
bool t_le(const Value& v, A& a) {
  return cmp_arg(v, a, "le") <= 0;
}
bool t_gt(const Value& v, A& a) {
  return cmp_arg(v, a, "gt") > 0;
}
bool t_ge(const Value& v, A& a) {
  return cmp_arg(v, a, "ge") >= 0;
}
bool t_in(const Value& v, A& a) {
  Value seq;
  one_arg(a, "in", seq);
  if (seq.is_string())
    return v.is_string() && seq.as_string().find(v.as_string()) != std::string::npos;
  if (seq.is_mapping()) return v.is_string() && seq.as_dict().find(v.as_string());
  for (const Value& x : iterate(seq)) {
    if (values_equal(v, x)) return true;
  }
  return false;
}
bool t_sameas(const Value& v, A& a) {
  Value o;
  one_arg(a, "sameas", o);
  if (v.is_none() || v.is_bool() || o.is_none() || o.is_bool())
    return values_equal(v, o) && v.type_name() == o.type_name();
  if (v.is_list() && o.is_list()) return &v.as_list() == &o.as_list();
  if (v.is_dict() && o.is_dict()) return &v.as_dict() == &o.as_dict();
  return false;
}
bool t_filter(const Value& v, A& a) {
  return no_args(a, "filter") && v.is_string() && find_filter(v.as_string());
}
bool t_test(const Value& v, A& a);

const std::map<std::string, TestFn>& tests() {
  static const std::map<std::string, TestFn> kTests = {
      {"boolean", t_boolean},
      {"callable", t_callable},
      {"defined", t_defined},
      {"divisibleby", t_divisibleby},
      {"eq", t_eq},
      {"equalto", t_eq},
      {"==", t_eq},
      {"escaped", t_escaped},
      {"even", t_even},
      {"false", t_false},
      {"filter", t_filter},
      {"float", t_float},
      {"ge", t_ge},
      {">=", t_ge},
      {"gt", t_gt},
      {">", t_gt},
      {"greaterthan", t_gt},
      {"in", t_in},
      {"integer", t_integer},
      {"iterable", t_iterable},
      {"le", t_le},
      {"<=", t_le},
      {"lower", t_lower},
      {"lt", t_lt},
      {"<", t_lt},
      {"lessthan", t_lt},
      {"mapping", t_mapping},
      {"ne", t_ne},
      {"!=", t_ne},
      {"none", t_none},
      {"number", t_number},
      {"odd", t_odd},
      {"sameas", t_sameas},
      {"sequence", t_sequence},
      {"string", t_string},
      {"test", t_test},
      {"true", t_true},
      {"undefined", t_undefined},
      {"upper", t_upper},
  };
  return kTests;
}
bool t_test(const Value& v, A& a) {
  return no_args(a, "test") && v.is_string() && tests().count(v.as_string());
}

}  // namespace

FilterFn find_filter(const std::string& name) {
  auto it = filters().find(name);
  return it == filters().end() ? nullptr : it->second;
}
TestFn find_test(const std::string& name) {
  auto it = tests().find(name);
  return it == tests().end() ? nullptr : it->second;
}
bool has_filter(const std::string& name) {
  return find_filter(name) != nullptr;
}
bool has_test(const std::string& name) {
  return find_test(name) != nullptr;
}

}  // namespace kpt::jinja
