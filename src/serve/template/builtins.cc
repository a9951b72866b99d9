// Attribute and item access, Python str/dict/list methods, and the globals of transformers'
// environment. Mutating methods (list.append, dict.update, ...) are refused like jinja2's
// ImmutableSandboxedEnvironment does.
#include "serve/template/builtins.h"

#include <algorithm>
#include <ctime>

#include <fmt/format.h>

#include "kpt/status.h"

namespace kpt::jinja {

ArgReader::ArgReader(CallArgs& args, const char* function, std::initializer_list<const char*> names)
    : args_(args), names_(names) {
  if (args.positional.size() > names_.size()) {
    throw_render_error(fmt::format("{}() takes at most {} argument(s) ({} given)", function,
                                   names_.size(), args.positional.size()));
  }
  for (const auto& [k, v] : args.keyword) {
    auto it = std::find_if(names_.begin(), names_.end(), [&](const char* n) { return k == n; });
    if (it == names_.end()) {
      throw_render_error(fmt::format("{}() got an unexpected keyword argument '{}'", function, k));
    }
  }
}

bool ArgReader::has(size_t index) const {
  if (index < args_.positional.size()) return true;
  for (const auto& [k, v] : args_.keyword) {
    if (index < names_.size() && k == names_[index]) return true;
  }
  return false;
}

Value ArgReader::get(size_t index, Value fallback) const {
  if (index < args_.positional.size()) return args_.positional[index];
  for (const auto& [k, v] : args_.keyword) {
    if (index < names_.size() && k == names_[index]) return v;
  }
  return fallback;
}

namespace {

Value bound(std::string name, std::function<Value(CallArgs&)> fn) {
  auto f = std::make_shared<Function>();
  f->name = std::move(name);
  f->call = std::move(fn);
  return Value(std::move(f));
}

const std::string& need_string(const Value& v, const char* what) {
  if (!v.is_string()) {
    throw_render_error(fmt::format("{}: expected a string, got {}", what, v.type_name()));
  }
  return v.as_string();
}

bool is_py_space(uint32_t c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f) || c == 0x85 ||
         c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
         c == 0x202f || c == 0x205f || c == 0x3000;
}

// str.strip/lstrip/rstrip: whitespace by default, else any of `chars` (by code point).
std::string strip_string(const std::string& s, const Value& chars, bool left, bool right) {
  std::vector<uint32_t> cps = utf8_decode(s);
  std::vector<uint32_t> set;
  bool ws = chars.is_none() || chars.is_undefined();
  if (!ws) set = utf8_decode(need_string(chars, "strip"));
  auto strip_it = [&](uint32_t c) {
    return ws ? is_py_space(c) : std::find(set.begin(), set.end(), c) != set.end();
  };
  size_t b = 0, e = cps.size();
  if (left) {
    while (b < e && strip_it(cps[b])) ++b;
  }
  if (right) {
    while (e > b && strip_it(cps[e - 1])) --e;
  }
  return utf8_encode(cps, b, e);
}

std::vector<Value> split_string(const std::string& s, const Value& sep_v, int64_t maxsplit) {
  std::vector<Value> out;
  if (sep_v.is_none() || sep_v.is_undefined()) {
    // Runs of whitespace (Python's definition, by code point), no empty strings.
    std::vector<uint32_t> cps = utf8_decode(s);
    size_t i = 0;
    const size_t n = cps.size();
    while (true) {
      while (i < n && is_py_space(cps[i])) ++i;
      if (i >= n) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        out.emplace_back(utf8_encode(cps, i, n));  // the remainder keeps trailing whitespace
        break;
      }
      size_t j = i;
      while (j < n && !is_py_space(cps[j])) ++j;
      out.emplace_back(utf8_encode(cps, i, j));
      i = j;
    }
    return out;
  }
  const std::string& sep = need_string(sep_v, "split");
  if (sep.empty()) throw_render_error("empty separator");
  size_t start = 0;
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    size_t p = s.find(sep, start);
    if (p == std::string::npos) break;
    out.emplace_back(s.substr(start, p - start));
    start = p + sep.size();
  }
  out.emplace_back(s.substr(start));
  return out;
}

std::string replace_all(const std::string& s, const std::string& old_s, const std::string& new_s,
                        int64_t count) {
  std::string out;
  if (old_s.empty()) {
    // Python inserts `new` between every character (and at both ends).
    std::vector<uint32_t> cps = utf8_decode(s);
    int64_t done = 0;
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        out += new_s;
        ++done;
      }
      if (i < cps.size()) out += utf8_encode(cps, i, i + 1);
    }
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t p = s.find(old_s, start);
    if (p == std::string::npos) break;
    out.append(s, start, p - start);
    out += new_s;
    start = p + old_s.size();
    ++done;
  }
  out.append(s, start, std::string::npos);
  return out;
}

bool prefix_match(const std::string& s, const Value& prefix, bool at_end) {
  auto one = [&](const Value& p) {
    const std::string& t = need_string(p, at_end ? "endswith" : "startswith");
    if (t.size() > s.size()) return false;
    return at_end ? s.compare(s.size() - t.size(), t.size(), t) == 0
                  : s.compare(0, t.size(), t) == 0;
  };
  if (prefix.is_list()) {
    return std::any_of(prefix.as_list().items.begin(), prefix.as_list().items.end(), one);
  }
  return one(prefix);
}

// "{} {0} {name}".format(...): plain replacement fields only (no format specs).
std::string python_format(const std::string& fmt_s, CallArgs& a) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt_s.size(); ++i) {
    char c = fmt_s[i];
    if (c == '{' && i + 1 < fmt_s.size() && fmt_s[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < fmt_s.size() && fmt_s[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      size_t end = fmt_s.find('}', i);
      if (end == std::string::npos) throw_render_error("format: single '{' encountered");
      std::string field = fmt_s.substr(i + 1, end - i - 1);
      if (field.find_first_of(":!") != std::string::npos) {
        throw_render_error("format: format specifications are not supported");
      }
      Value v;
      if (field.empty()) {
        if (auto_index >= a.positional.size()) throw_render_error("format: index out of range");
        v = a.positional[auto_index++];
      } else if (std::all_of(field.begin(), field.end(), ::isdigit)) {
        size_t k = std::stoul(field);
        if (k >= a.positional.size()) throw_render_error("format: index out of range");
        v = a.positional[k];
      } else {
        auto it = std::find_if(a.keyword.begin(), a.keyword.end(),
                               [&](auto& kv) { return kv.first == field; });
        if (it == a.keyword.end())
          throw_render_error(fmt::format("format: missing key '{}'", field));
        v = it->second;
      }
      out += v.str();
      i = end;
    } else if (c == '}') {
      throw_render_error("format: single '}' encountered");
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string percent_format(const std::string& f, const Value& args) {
  // CPython: a tuple is the argument list; anything else with __getitem__ (dict, list, str is
  // excluded) may serve %(key)s; otherwise the value is the single argument.
  bool is_tuple = args.is_list() && args.as_list().is_tuple;
  bool mapping_like = !is_tuple && (args.is_dict() || args.is_list());
  std::vector<Value> positional = is_tuple ? args.as_list().items : std::vector<Value>{args};
  size_t next = 0;
  bool used_mapping = false;
  std::string out;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%') {
      out += f[i];
      continue;
    }
    if (++i >= f.size()) throw_render_error("incomplete format");
    Value arg;
    bool have_arg = false;
    if (f[i] == '(') {
      size_t close = f.find(')', i);
      if (close == std::string::npos) throw_render_error("incomplete format key");
      if (!args.is_mapping()) throw_render_error("format requires a mapping");
      const Value* v = args.as_dict().find(f.substr(i + 1, close - i - 1));
      if (!v) throw_render_error(fmt::format("KeyError: '{}'", f.substr(i + 1, close - i - 1)));
      arg = *v;
      have_arg = used_mapping = true;
      i = close + 1;
    }
    std::string flags;
    while (i < f.size() && std::string_view("-+ #0").find(f[i]) != std::string_view::npos)
      flags += f[i++];
    std::string width, precision;
    while (i < f.size() && std::isdigit(static_cast<unsigned char>(f[i]))) width += f[i++];
    if (i < f.size() && f[i] == '.') {
      ++i;
      precision = "0";
      while (i < f.size() && std::isdigit(static_cast<unsigned char>(f[i]))) precision += f[i++];
    }
    if (i >= f.size()) throw_render_error("incomplete format");
    char conv = f[i];
    if (conv == '%') {
      out += '%';
      continue;
    }
    if (!have_arg) {
      if (next >= positional.size()) throw_render_error("not enough arguments for format string");
      arg = positional[next++];
    }
    if (width.size() > 4 || precision.size() > 4)
      throw_render_error("format width or precision too large");
    std::string spec = ":";
    bool left = flags.find('-') != std::string::npos;
    std::string body;
    auto num = [&](const char* type) {
      if (!arg.is_number()) {
        throw_render_error(
            fmt::format("%{} format: a real number is required, not {}", conv, arg.type_name()));
      }
      std::string sp = flags.find('+') != std::string::npos   ? "+"
                       : flags.find(' ') != std::string::npos ? " "
                                                              : "";
      if (flags.find('#') != std::string::npos) sp += "#";
      if (flags.find('0') != std::string::npos && !left) sp += "0" + width;
      if (!precision.empty())
        sp += "." + std::string(precision.size() > 1 ? precision.substr(1) : "0");
      std::string fs = "{:" + sp + type + "}";
      if (std::string_view("dixXoc").find(type[0]) != std::string_view::npos) {
        int64_t iv = arg.is_float()  ? static_cast<int64_t>(std::trunc(arg.as_float()))
                     : arg.is_bool() ? int64_t{arg.as_bool()}
                                     : arg.as_int();
        if (type[0] == 'c') return utf8_encode({static_cast<uint32_t>(iv)}, 0, 1);
        std::string fs2 = "{:" + sp.substr(0, sp.find('.')) +
                          (type[0] == 'i' ? std::string("d") : std::string(type)) + "}";
        return fmt::format(fmt::runtime(fs2), iv);
      }
      std::string r = fmt::format(
          fmt::runtime(precision.empty() ? "{:" + sp + ".6" + type + "}" : fs), arg.to_double());
      return r;
    };
    switch (conv) {
      case 's':
        body = arg.str();
        break;
      case 'r':
        body = arg.repr();
        break;
      case 'd':
      case 'i':
      case 'u':
        body = num("d");
        break;
      case 'f':
      case 'F':
        body = num("f");
        break;
      case 'e':
        body = num("e");
        break;
      case 'E':
        body = num("E");
        break;
      case 'g':
        body = num("g");
        break;
      case 'G':
        body = num("G");
        break;
      case 'x':
        body = num("x");
        break;
      case 'X':
        body = num("X");
        break;
      case 'o':
        body = num("o");
        break;
      case 'c':
        body = arg.is_string() ? arg.as_string() : num("c");
        break;
      default:
        throw_render_error(fmt::format("unsupported format character '{}'", conv));
    }
    if ((conv == 's' || conv == 'r') && !precision.empty()) {
      std::vector<uint32_t> cps = utf8_decode(body);
      body = utf8_encode(cps, 0, std::stoul(precision.size() > 1 ? precision.substr(1) : "0"));
    }
    size_t w = width.empty() ? 0 : std::stoul(width);
    size_t len = utf8_length(body);
    if (len < w) body = left ? body + std::string(w - len, ' ') : std::string(w - len, ' ') + body;
    out += body;
  }
  if (!used_mapping && !mapping_like && next < positional.size()) {
    throw_render_error("not all arguments converted during string formatting");
  }
  return out;
}

namespace {

Value string_method(const std::string& s, const std::string& name) {
  using A = CallArgs;
  auto mk = [&](auto fn) { return bound("str." + name, [s, fn](A& a) { return fn(s, a); }); };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    bool l = name != "rstrip", r = name != "lstrip";
    return mk([l, r](const std::string& x, A& a) {
      ArgReader ar(a, "strip", {"chars"});
      return Value(strip_string(x, ar.get(0, Value(nullptr)), l, r));
    });
  }
  if (name == "split") {
    return mk([](const std::string& x, A& a) {
      ArgReader ar(a, "split", {"sep", "maxsplit"});
      Value m = ar.get(1, Value(-1));
      return Value::list(split_string(x, ar.get(0, Value(nullptr)), m.is_int() ? m.as_int() : -1));
    });
  }
  if (name == "startswith" || name == "endswith") {
    bool end = name == "endswith";
    return mk([end](const std::string& x, A& a) {
      ArgReader ar(a, end ? "endswith" : "startswith", {"prefix"});
      return Value(prefix_match(x, ar.get(0, Value("")), end));
    });
  }
  if (name == "upper" || name == "lower") {
    bool up = name == "upper";
    return mk([up](const std::string& x, A& a) {
      ArgReader ar(a, "upper", {});
      return Value(up ? str_upper(x) : str_lower(x));
    });
  }
  if (name == "title") {
    return mk([](const std::string& x, A& a) {
      ArgReader ar(a, "title", {});
      return Value(str_title(x));
    });
  }
  if (name == "capitalize") {
    return mk([](const std::string& x, A& a) {
      ArgReader ar(a, "capitalize", {});
      return Value(str_capitalize(x));
    });
  }
  if (name == "replace") {
    return mk([](const std::string& x, A& a) {
      ArgReader ar(a, "replace", {"old", "new", "count"});
      Value c = ar.get(2, Value(-1));
      return Value(replace_all(x, need_string(ar.get(0), "replace"),
                               need_string(ar.get(1), "replace"), c.is_int() ? c.as_int() : -1));
    });
  }
  if (name == "find" || name == "rfind" || name == "count") {
    int mode = name == "find" ? 0 : name == "rfind" ? 1 : 2;
    return mk([mode](const std::string& x, A& a) {
      ArgReader ar(a, "find", {"sub"});
      const std::string sub = need_string(ar.get(0), "find");
      if (mode == 2) {
        if (sub.empty()) return Value(static_cast<int64_t>(utf8_length(x) + 1));
        int64_t n = 0;
        for (size_t p = x.find(sub); p != std::string::npos; p = x.find(sub, p + sub.size())) ++n;
        return Value(n);
      }
      size_t p = mode == 0 ? x.find(sub) : x.rfind(sub);
      return Value(p == std::string::npos ? int64_t{-1}
                                          : static_cast<int64_t>(utf8_length(x.substr(0, p))));
    });
  }
  if (name == "join") {
    return mk([](const std::string& x, A& a) {
      ArgReader ar(a, "join", {"iterable"});
      std::string out;
      bool first = true;
      for (const Value& v : iterate(ar.get(0))) {
        if (!first) out += x;
        first = false;
        out += need_string(v, "join");
      }
      return Value(out);
    });
  }
  if (name == "format") {
    return mk([](const std::string& x, A& a) { return Value(python_format(x, a)); });
  }
  if (name == "splitlines") {
    return mk([](const std::string& x, A& a) {
      ArgReader ar(a, "splitlines", {});
      std::vector<Value> out;
      size_t start = 0;
      for (size_t i = 0; i < x.size(); ++i) {
        if (x[i] == '\n' || x[i] == '\r') {
          out.emplace_back(x.substr(start, i - start));
          if (x[i] == '\r' && i + 1 < x.size() && x[i + 1] == '\n') ++i;
          start = i + 1;
        }
      }
      if (start < x.size()) out.emplace_back(x.substr(start));
      return Value::list(std::move(out));
    });
  }
  if (name == "isdigit" || name == "isalpha" || name == "isspace" || name == "isupper" ||
      name == "islower" || name == "isalnum") {
    return mk([name](const std::string& x, A& a) {
      ArgReader ar(a, name.c_str(), {});
      bool cased = false, ok = !x.empty();
      // By code point; non-ASCII letters count as alphabetic (CPython consults Unicode data).
      for (uint32_t c : utf8_decode(x)) {
        bool ascii_alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        bool alpha = ascii_alpha || (c >= 0x80 && !is_py_space(c));
        bool digit = c >= '0' && c <= '9';
        bool upper = str_lower(utf8_encode({c}, 0, 1)) != utf8_encode({c}, 0, 1);
        bool lower = str_upper(utf8_encode({c}, 0, 1)) != utf8_encode({c}, 0, 1);
        if (name == "isdigit") ok = ok && digit;
        if (name == "isalpha") ok = ok && alpha;
        if (name == "isalnum") ok = ok && (alpha || digit);
        if (name == "isspace") ok = ok && is_py_space(c);
        if (name == "isupper") ok = ok && !lower, cased = cased || upper;
        if (name == "islower") ok = ok && !upper, cased = cased || lower;
      }
      if (name == "isupper" || name == "islower") ok = ok && cased;
      return Value(ok);
    });
  }
  if (name == "removeprefix" || name == "removesuffix") {
    bool pre = name == "removeprefix";
    return mk([pre](const std::string& x, A& a) {
      ArgReader ar(a, "removeprefix", {"affix"});
      const std::string t = need_string(ar.get(0), "removeprefix");
      if (!prefix_match(x, Value(t), !pre)) return Value(x);
      return Value(pre ? x.substr(t.size()) : x.substr(0, x.size() - t.size()));
    });
  }
  return Value::undefined(fmt::format("'str object' has no attribute '{}'", name));
}

Value dict_method(const Value& obj, const std::string& name) {
  if (name == "items" || name == "keys" || name == "values") {
    int mode = name == "items" ? 0 : name == "keys" ? 1 : 2;
    return bound("dict." + name, [obj, mode](CallArgs& a) {
      ArgReader ar(a, "items", {});
      std::vector<Value> out;
      for (const auto& [k, v] : obj.as_dict().items) {
        if (mode == 0) out.push_back(Value::list({Value(k), v}, true));
        if (mode == 1) out.emplace_back(k);
        if (mode == 2) out.push_back(v);
      }
      Value view = Value::list(std::move(out));
      view.as_list().view = mode == 0 ? "dict_items" : mode == 1 ? "dict_keys" : "dict_values";
      return view;
    });
  }
  if (name == "get") {
    return bound("dict.get", [obj](CallArgs& a) {
      ArgReader ar(a, "get", {"key", "default"});
      Value k = ar.get(0);
      const Value* v = k.is_string() ? obj.as_dict().find(k.as_string()) : nullptr;
      return v ? *v : ar.get(1, Value(nullptr));
    });
  }
  if (name == "copy") {
    return bound("dict.copy", [obj](CallArgs&) {
      auto d = std::make_shared<Dict>(obj.as_dict());
      return Value(std::move(d));
    });
  }
  return Value();
}

bool is_unsafe(const Value& obj, const std::string& name) {
  static const char* kDict[] = {"pop", "popitem", "setdefault", "update", "clear"};
  static const char* kList[] = {"append", "extend",  "insert", "pop",
                                "remove", "reverse", "sort",   "clear"};
  if (obj.is_mapping())
    return std::any_of(std::begin(kDict), std::end(kDict),
                       [&](const char* n) { return name == n; });
  if (obj.is_list() && !obj.as_list().is_tuple) {
    return std::any_of(std::begin(kList), std::end(kList),
                       [&](const char* n) { return name == n; });
  }
  return false;
}

}  // namespace

Value get_attribute(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) throw_render_error(obj.as_undefined().hint);
  if (is_unsafe(obj, name)) {
    // A later call fails like jinja2's SecurityError; printing it gives "" like its Undefined.
    return Value::undefined(
        fmt::format("access to attribute '{}' of '{}' object is unsafe", name, obj.type_name()));
  }
  if (obj.is_string()) return string_method(obj.as_string(), name);
  if (obj.is_dict()) {
    if (obj.is_mapping()) {
      Value m = dict_method(obj, name);
      if (!m.is_undefined()) return m;
    }
    if (const Value* v = obj.as_dict().find(name)) return *v;
    return Value::undefined(
        fmt::format("'{} object' has no attribute '{}'", obj.type_name(), name));
  }
  if (obj.is_list() && (name == "index" || name == "count")) {
    bool count = name == "count";
    return bound("list." + name, [obj, count](CallArgs& a) {
      ArgReader ar(a, count ? "count" : "index", {"value"});
      Value x = ar.get(0);
      int64_t n = 0;
      const auto& items = obj.as_list().items;
      for (size_t i = 0; i < items.size(); ++i) {
        if (!values_equal(items[i], x)) continue;
        if (!count) return Value(static_cast<int64_t>(i));
        ++n;
      }
      if (!count) throw_render_error(fmt::format("{} is not in list", x.repr()));
      return Value(n);
    });
  }
  return Value::undefined(fmt::format("'{} object' has no attribute '{}'", obj.type_name(), name));
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) throw_render_error(obj.as_undefined().hint);
  if (obj.is_dict() && key.is_string()) {
    if (obj.is_mapping()) {
      if (const Value* v = obj.as_dict().find(key.as_string())) return *v;
    }
    return get_attribute(obj, key.as_string());
  }
  if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.is_bool() ? key.as_bool() : key.as_int();
    if (obj.is_list()) {
      if (obj.as_list().view)
        return Value::undefined(fmt::format("'{}' object is not subscriptable", obj.type_name()));
      const auto n = static_cast<int64_t>(obj.as_list().items.size());
      if (i < 0) i += n;
      if (i < 0 || i >= n)
        return Value::undefined(
            fmt::format("'{} object' has no element {}", obj.type_name(), key.repr()));
      return obj.as_list().items[static_cast<size_t>(i)];
    }
    std::vector<uint32_t> cps = utf8_decode(obj.as_string());
    const auto n = static_cast<int64_t>(cps.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n)
      return Value::undefined(fmt::format("'str object' has no element {}", key.repr()));
    return Value(utf8_encode(cps, static_cast<size_t>(i), static_cast<size_t>(i) + 1));
  }
  if (key.is_string()) return get_attribute(obj, key.as_string());
  return Value::undefined(
      fmt::format("'{} object' has no element {}", obj.type_name(), key.repr()));
}

Value slice_value(const Value& obj, const Value& start_v, const Value& stop_v,
                  const Value& step_v) {
  if (obj.is_undefined()) throw_render_error(obj.as_undefined().hint);
  auto as_opt = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_none()) return std::nullopt;
    if (v.is_int()) return v.as_int();
    if (v.is_bool()) return int64_t{v.as_bool()};
    throw_render_error(
        fmt::format("slice {} must be an integer or None, got {}", what, v.type_name()));
  };
  std::optional<int64_t> start = as_opt(start_v, "start"), stop = as_opt(stop_v, "stop"),
                         step_o = as_opt(step_v, "step");
  int64_t step = step_o.value_or(1);
  if (step == 0) throw_render_error("slice step cannot be zero");
  std::vector<uint32_t> cps;
  int64_t n;
  if (obj.is_string()) {
    cps = utf8_decode(obj.as_string());
    n = static_cast<int64_t>(cps.size());
  } else if (obj.is_list() && !obj.as_list().view) {
    n = static_cast<int64_t>(obj.as_list().items.size());
  } else {
    throw_render_error(fmt::format("'{}' object is not subscriptable", obj.type_name()));
  }
  // PySlice_AdjustIndices.
  auto adjust = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v;
    if (x < 0) {
      x += n;
      if (x < 0) x = step < 0 ? -1 : 0;
    } else if (x >= n) {
      x = step < 0 ? n - 1 : n;
    }
    return x;
  };
  int64_t b = adjust(start, step < 0 ? n - 1 : 0);
  int64_t e = adjust(stop, step < 0 ? -1 : n);
  std::vector<size_t> idx;
  for (int64_t i = b; step > 0 ? i < e : i > e; i += step) idx.push_back(static_cast<size_t>(i));
  if (obj.is_string()) {
    std::vector<uint32_t> picked;
    for (size_t i : idx) picked.push_back(cps[i]);
    return Value(utf8_encode(picked, 0, picked.size()));
  }
  std::vector<Value> items;
  for (size_t i : idx) items.push_back(obj.as_list().items[i]);
  return Value::list(std::move(items), obj.as_list().is_tuple);
}

std::vector<Value> iterate(const Value& v) {
  if (v.is_undefined()) return {};
  if (v.is_list()) return v.as_list().items;
  if (v.is_mapping()) {
    std::vector<Value> keys;
    for (const auto& [k, x] : v.as_dict().items) keys.emplace_back(k);
    return keys;
  }
  if (v.is_string()) {
    std::vector<uint32_t> cps = utf8_decode(v.as_string());
    std::vector<Value> out;
    out.reserve(cps.size());
    for (size_t i = 0; i < cps.size(); ++i) out.emplace_back(utf8_encode(cps, i, i + 1));
    return out;
  }
  throw_render_error(fmt::format("'{}' object is not iterable", v.type_name()));
}

namespace {

// dict(...) and namespace(...): an optional mapping positional argument plus keywords.
Value build_dict(CallArgs& a, bool is_namespace, const char* fn) {
  auto d = std::make_shared<Dict>();
  d->is_namespace = is_namespace;
  if (a.positional.size() > 1)
    throw_render_error(fmt::format("{}() takes at most 1 positional argument", fn));
  if (!a.positional.empty()) {
    const Value& src = a.positional[0];
    if (src.is_mapping()) {
      d->items = src.as_dict().items;
    } else if (src.is_list()) {
      for (const Value& pair : src.as_list().items) {
        if (!pair.is_list() || pair.as_list().items.size() != 2 ||
            !pair.as_list().items[0].is_string()) {
          throw_render_error(fmt::format("{}(): sequence elements must be (str, value) pairs", fn));
        }
        d->set(pair.as_list().items[0].as_string(), pair.as_list().items[1]);
      }
    } else {
      throw_render_error(fmt::format("{}(): cannot build from {}", fn, src.type_name()));
    }
  }
  for (auto& [k, v] : a.keyword) d->set(k, v);
  return Value(std::move(d));
}

}  // namespace

void add_globals(Dict& globals) {
  globals.set("range", bound("range", [](CallArgs& a) {
                if (!a.keyword.empty() || a.positional.empty() || a.positional.size() > 3) {
                  throw_render_error("range() takes 1 to 3 positional integer arguments");
                }
                int64_t v[3] = {0, 0, 1};
                for (size_t i = 0; i < a.positional.size(); ++i) {
                  const Value& x = a.positional[i];
                  if (!x.is_int() && !x.is_bool()) {
                    throw_render_error(fmt::format(
                        "'{}' object cannot be interpreted as an integer", x.type_name()));
                  }
                  v[a.positional.size() == 1 ? 1 : i] = x.is_bool() ? x.as_bool() : x.as_int();
                }
                if (v[2] == 0) throw_render_error("range() arg 3 must not be zero");
                // jinja2's sandbox refuses ranges over MAX_RANGE items.
                constexpr int64_t kMaxRange = 100000;
                std::vector<Value> out;
                for (int64_t i = v[0]; v[2] > 0 ? i < v[1] : i > v[1]; i += v[2]) {
                  if (static_cast<int64_t>(out.size()) >= kMaxRange) {
                    throw_render_error(
                        "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
                  }
                  out.emplace_back(i);
                }
                return Value::list(std::move(out));
              }));
  globals.set("dict", bound("dict", [](CallArgs& a) { return build_dict(a, false, "dict"); }));
  globals.set("namespace",
              bound("namespace", [](CallArgs& a) { return build_dict(a, true, "namespace"); }));
  globals.set("raise_exception", bound("raise_exception", [](CallArgs& a) -> Value {
                ArgReader ar(a, "raise_exception", {"message"});
                throw TemplateRaised(ar.get(0, Value("")).str());
              }));
  globals.set("strftime_now", bound("strftime_now", [](CallArgs& a) {
                ArgReader ar(a, "strftime_now", {"format"});
                const std::string f = need_string(ar.get(0), "strftime_now");
                std::time_t now = std::time(nullptr);
                std::tm local{};
                localtime_r(&now, &local);
                std::string buf(256 + f.size() * 8, '\0');
                size_t n = f.empty() ? 0 : std::strftime(buf.data(), buf.size(), f.c_str(), &local);
                buf.resize(n);
                return Value(std::move(buf));
              }));
}

}  // namespace kpt::jinja
