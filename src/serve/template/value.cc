#include "serve/template/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include "kpt/status.h"

namespace kpt::jinja {

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : items) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Dict::set(std::string key, Value value) {
  for (auto& [k, v] : items) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(std::move(key), std::move(value));
}

Value Value::list(std::vector<Value> items, bool is_tuple) {
  auto l = std::make_shared<List>();
  l->items = std::move(items);
  l->is_tuple = is_tuple;
  return Value(std::move(l));
}

Value Value::dict() {
  return Value(std::make_shared<Dict>());
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value(nullptr);
    case nlohmann::ordered_json::value_t::boolean:
      return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) {
        throw Error(ErrorCode::kInvalidArgument,
                    fmt::format("template context: integer {} does not fit in 64 bits", u));
      }
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(from_json(e));
      return list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      auto d = std::make_shared<Dict>();
      d->items.reserve(j.size());
      for (const auto& [k, v] : j.items()) d->items.emplace_back(k, from_json(v));
      return Value(std::move(d));
    }
    default:
      throw Error(ErrorCode::kInvalidArgument,
                  "template context: binary JSON values are not supported");
  }
}

double Value::to_double() const {
  if (is_bool()) return as_bool() ? 1.0 : 0.0;
  if (is_int()) return static_cast<double>(as_int());
  return as_float();
}

bool Value::truthy() const {
  return std::visit(
      [](const auto& x) -> bool {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, Undefined> || std::is_same_v<T, std::nullptr_t>) {
          return false;
        } else if constexpr (std::is_same_v<T, bool>) {
          return x;
        } else if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, double>) {
          return x != 0;
        } else if constexpr (std::is_same_v<T, std::string>) {
          return !x.empty();
        } else if constexpr (std::is_same_v<T, ListPtr>) {
          return !x->items.empty();
        } else if constexpr (std::is_same_v<T, DictPtr>) {
          return x->is_namespace || !x->items.empty();
        } else {
          return true;
        }
      },
      v_);
}

const char* Value::type_name() const {
  if (is_undefined()) return "Undefined";
  if (is_none()) return "NoneType";
  if (is_bool()) return "bool";
  if (is_int()) return "int";
  if (is_float()) return "float";
  if (is_string()) return "str";
  if (is_list()) return as_list().view ? as_list().view : as_list().is_tuple ? "tuple" : "list";
  if (is_dict()) return as_dict().is_namespace ? "Namespace" : "dict";
  return "function";
}

std::string format_python_float(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  if (f == 0) return std::signbit(f) ? "-0.0" : "0.0";
  // Shortest round-trip digits in scientific form, then laid out the way float.__repr__ does.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), f, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool negative = sci[0] == '-';
  if (negative) sci.erase(0, 1);
  size_t e_pos = sci.find('e');
  int exponent = std::stoi(sci.substr(e_pos + 1));
  std::string digits;
  for (size_t i = 0; i < e_pos; ++i) {
    if (sci[i] != '.') digits += sci[i];
  }
  std::string out = negative ? "-" : "";
  int n = static_cast<int>(digits.size());
  if (exponent < -4 || exponent >= 16) {
    out += digits[0];
    if (n > 1) {
      out += '.';
      out.append(digits, 1);
    }
    out += fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent));
  } else if (exponent < 0) {
    out += "0.";
    out.append(static_cast<size_t>(-exponent - 1), '0');
    out += digits;
  } else if (exponent + 1 >= n) {
    out += digits;
    out.append(static_cast<size_t>(exponent + 1 - n), '0');
    out += ".0";
  } else {
    out.append(digits, 0, static_cast<size_t>(exponent + 1));
    out += '.';
    out.append(digits, static_cast<size_t>(exponent + 1));
  }
  return out;
}

namespace {

// Code points CPython's repr() escapes beyond ASCII controls: C1 controls, non-space separators
// (Zs/Zl/Zp), common format characters (Cf) and private use. Unassigned code points, which CPython
// also escapes, are printed as-is.
bool python_nonprintable(uint32_t c) {
  return (c >= 0x80 && c <= 0xa0) || c == 0xad || c == 0x61c || c == 0x1680 || c == 0x180e ||
         (c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f) ||
         (c >= 0x205f && c <= 0x2064) || (c >= 0x2066 && c <= 0x206f) || c == 0x3000 ||
         (c >= 0xd800 && c <= 0xf8ff) || c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb) ||
         (c >= 0xe0000 && c <= 0xe007f) || c >= 0xf0000;
}

// repr() of a str: single quotes unless the text has ' and no ", escapes like CPython.
std::string repr_string(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (uint32_t c : utf8_decode(s)) {
    if (c == static_cast<uint32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0xff && python_nonprintable(c))) {
      out += fmt::format("\\x{:02x}", c);
    } else if (python_nonprintable(c)) {
      out += c <= 0xffff ? fmt::format("\\u{:04x}", c) : fmt::format("\\U{:08x}", c);
    } else {
      out += utf8_encode({c}, 0, 1);
    }
  }
  out += quote;
  return out;
}

// json.dumps' short escapes; false when `cp` has none.
bool short_escape(std::string& out, uint32_t cp) {
  switch (cp) {
    case '"': out += "\\\""; return true;
    case '\\': out += "\\\\"; return true;
    case '\n': out += "\\n"; return true;
    case '\r': out += "\\r"; return true;
    case '\t': out += "\\t"; return true;
    case '\b': out += "\\b"; return true;
    case '\f': out += "\\f"; return true;
    default: return false;
  }
}

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  if (!ensure_ascii) {
    for (char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      if (short_escape(out, c)) continue;
      if (c < 0x20) {
        out += fmt::format("\\u{:04x}", c);
      } else {
        out += ch;
      }
    }
  } else {
    for (uint32_t cp : utf8_decode(s)) {
      if (short_escape(out, cp)) continue;
      if (cp < 0x20 || (cp >= 0x7f && cp < 0x10000)) {
        out += fmt::format("\\u{:04x}", cp);
      } else if (cp >= 0x10000) {
        uint32_t v = cp - 0x10000;
        out += fmt::format("\\u{:04x}\\u{:04x}", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
      } else {
        out += static_cast<char>(cp);
      }
    }
  }
  out += '"';
}

std::string json_float(double f) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f > 0 ? "Infinity" : "-Infinity";
  return format_python_float(f);
}

void to_json_impl(std::string& out, const Value& v, bool ensure_ascii, const std::string* indent,
                  bool sort_keys, int depth) {
  if (depth > 512) throw_render_error("tojson: value nested too deeply");
  auto newline = [&](int level) {
    out += '\n';
    for (int i = 0; i < level; ++i) out += *indent;
  };
  if (v.is_none()) {
    out += "null";
  } else if (v.is_bool()) {
    out += v.as_bool() ? "true" : "false";
  } else if (v.is_int()) {
    out += std::to_string(v.as_int());
  } else if (v.is_float()) {
    out += json_float(v.as_float());
  } else if (v.is_string()) {
    json_string(out, v.as_string(), ensure_ascii);
  } else if (v.is_list() && !v.as_list().view) {
    const auto& items = v.as_list().items;
    if (items.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out += indent ? "," : ", ";
      if (indent) newline(depth + 1);
      to_json_impl(out, items[i], ensure_ascii, indent, sort_keys, depth + 1);
    }
    if (indent) newline(depth);
    out += ']';
  } else if (v.is_mapping()) {
    const auto& items = v.as_dict().items;
    if (items.empty()) {
      out += "{}";
      return;
    }
    std::vector<size_t> order(items.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    if (sort_keys) {
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t a, size_t b) { return items[a].first < items[b].first; });
    }
    out += '{';
    for (size_t n = 0; n < order.size(); ++n) {
      if (n > 0) out += indent ? "," : ", ";
      if (indent) newline(depth + 1);
      json_string(out, items[order[n]].first, ensure_ascii);
      out += ": ";
      to_json_impl(out, items[order[n]].second, ensure_ascii, indent, sort_keys, depth + 1);
    }
    if (indent) newline(depth);
    out += '}';
  } else {
    throw_render_error(fmt::format("Object of type {} is not JSON serializable", v.type_name()));
  }
}

}  // namespace

std::string Value::str() const {
  if (is_undefined()) return "";
  if (is_string()) return as_string();
  return repr();
}

std::string Value::repr() const {
  if (is_undefined()) return "Undefined";
  if (is_none()) return "None";
  if (is_bool()) return as_bool() ? "True" : "False";
  if (is_int()) return std::to_string(as_int());
  if (is_float()) return format_python_float(as_float());
  if (is_string()) return repr_string(as_string());
  if (is_list()) {
    const List& l = as_list();
    std::string out = l.view ? std::string(l.view) + "([" : l.is_tuple ? "(" : "[";
    for (size_t i = 0; i < l.items.size(); ++i) {
      if (i > 0) out += ", ";
      out += l.items[i].repr();
    }
    if (l.is_tuple && l.items.size() == 1) out += ',';
    out += l.view ? "])" : l.is_tuple ? ")" : "]";
    return out;
  }
  if (is_dict()) {
    const Dict& d = as_dict();
    std::string out = d.is_namespace ? "<Namespace {" : "{";
    for (size_t i = 0; i < d.items.size(); ++i) {
      if (i > 0) out += ", ";
      out += repr_string(d.items[i].first) + ": " + d.items[i].second.repr();
    }
    out += d.is_namespace ? "}>" : "}";
    return out;
  }
  return "<function " + as_function().name + ">";
}

std::string Value::to_json(bool ensure_ascii, int indent, bool sort_keys) const {
  std::string out;
  if (indent < 0) {
    to_json_impl(out, *this, ensure_ascii, nullptr, sort_keys, 0);
  } else {
    std::string ind(static_cast<size_t>(indent), ' ');
    to_json_impl(out, *this, ensure_ascii, &ind, sort_keys, 0);
  }
  return out;
}

std::string Value::to_json(bool ensure_ascii, const std::string* indent_str, bool sort_keys) const {
  std::string out;
  to_json_impl(out, *this, ensure_ascii, indent_str, sort_keys, 0);
  return out;
}

bool values_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.to_double() == b.to_double();
    int64_t x = a.is_bool() ? a.as_bool() : a.as_int();
    int64_t y = b.is_bool() ? b.as_bool() : b.as_int();
    return x == y;
  }
  if (a.is_undefined() || b.is_undefined()) return a.is_undefined() && b.is_undefined();
  if (a.is_none() || b.is_none()) return a.is_none() && b.is_none();
  if (a.is_string() && b.is_string()) return a.as_string() == b.as_string();
  if (a.is_list() && b.is_list()) {
    const List& x = a.as_list();
    const List& y = b.as_list();
    if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) return false;
    if ((x.view == nullptr) != (y.view == nullptr)) return false;
    if (x.view && std::string_view(x.view) != y.view) return false;
    for (size_t i = 0; i < x.items.size(); ++i) {
      if (!values_equal(x.items[i], y.items[i])) return false;
    }
    return true;
  }
  if (a.is_dict() && b.is_dict()) {
    const Dict& x = a.as_dict();
    const Dict& y = b.as_dict();
    if (x.is_namespace || y.is_namespace) return &x == &y;
    if (x.items.size() != y.items.size()) return false;
    for (const auto& [k, v] : x.items) {
      const Value* other = y.find(k);
      if (!other || !values_equal(v, *other)) return false;
    }
    return true;
  }
  if (a.is_function() && b.is_function()) return &a.as_function() == &b.as_function();
  return false;
}

int compare_values(const Value& a, const Value& b, bool case_sensitive) {
  if (a.is_number() && b.is_number()) {
    if (a.is_int() && b.is_int()) return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int());
    double x = a.to_double();
    double y = b.to_double();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    // Byte order of UTF-8 is code point order, which is what Python compares.
    int c = case_sensitive ? a.as_string().compare(b.as_string())
                           : str_lower(a.as_string()).compare(str_lower(b.as_string()));
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list() && a.as_list().is_tuple == b.as_list().is_tuple) {
    const auto& x = a.as_list().items;
    const auto& y = b.as_list().items;
    for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
      if (values_equal(x[i], y[i])) continue;
      return compare_values(x[i], y[i], case_sensitive);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  if (a.is_undefined()) throw_render_error(a.as_undefined().hint);
  if (b.is_undefined()) throw_render_error(b.as_undefined().hint);
  throw_render_error(fmt::format("'<' not supported between instances of '{}' and '{}'",
                                 a.type_name(), b.type_name()));
}

std::vector<uint32_t> utf8_decode(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    int extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    if (extra < 0 || i + static_cast<size_t>(extra) >= s.size()) {
      // Invalid or truncated UTF-8: keep the byte as a code point so nothing is lost.
      out.push_back(c);
      ++i;
      continue;
    }
    uint32_t cp = extra == 0 ? c : (c & (0x3F >> extra));
    bool ok = true;
    for (int k = 1; k <= extra; ++k) {
      auto cc = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      if ((cc & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (!ok) {
      out.push_back(c);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += static_cast<size_t>(extra) + 1;
  }
  return out;
}

std::string utf8_encode(const std::vector<uint32_t>& cps, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end && i < cps.size(); ++i) {
    uint32_t cp = cps[i];
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return out;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

namespace {

uint32_t cp_lower(uint32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  if ((c >= 0xC0 && c <= 0xDE && c != 0xD7) || (c >= 0x391 && c <= 0x3AB && c != 0x3A2) ||
      (c >= 0x410 && c <= 0x42F) || (c >= 0xFF21 && c <= 0xFF3A)) {
    return c + 0x20;
  }
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;
  if (c == 0x386) return 0x3AC;
  if (c >= 0x388 && c <= 0x38A) return c + 37;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 63;
  if (c == 0x178) return 0xFF;
  if (c == 0x130) return 'i';
  if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177) || (c >= 0x460 && c <= 0x481) ||
      (c >= 0x48A && c <= 0x4BF)) {
    return c % 2 == 0 ? c + 1 : c;
  }
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return c % 2 == 1 ? c + 1 : c;
  return c;
}

uint32_t cp_upper(uint32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  if ((c >= 0xE0 && c <= 0xFE && c != 0xF7) || (c >= 0x3B1 && c <= 0x3CB && c != 0x3C2) ||
      (c >= 0x430 && c <= 0x44F) || (c >= 0xFF41 && c <= 0xFF5A)) {
    return c - 0x20;
  }
  if (c == 0x3C2) return 0x3A3;
  if (c >= 0x450 && c <= 0x45F) return c - 0x50;
  if (c == 0x3AC) return 0x386;
  if (c >= 0x3AD && c <= 0x3AF) return c - 37;
  if (c == 0x3CC) return 0x38C;
  if (c == 0x3CD || c == 0x3CE) return c - 63;
  if (c == 0xFF) return 0x178;
  if (c == 0xB5) return 0x39C;
  if (c == 0x131) return 'I';
  if (c == 0x17F) return 'S';
  if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177) || (c >= 0x460 && c <= 0x481) ||
      (c >= 0x48A && c <= 0x4BF)) {
    return c % 2 == 1 ? c - 1 : c;
  }
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return c % 2 == 0 ? c - 1 : c;
  return c;
}

bool cp_cased(uint32_t c) {
  return cp_lower(c) != c || cp_upper(c) != c || c == 0xDF;
}

void append_cp(std::string& out, uint32_t c) {
  out += utf8_encode({c}, 0, 1);
}

void append_lower(std::string& out, uint32_t c) {
  append_cp(out, cp_lower(c));
  if (c == 0x130) append_cp(out, 0x307);  // İ lower-cases to i + combining dot
}

// Title case: like upper case except that ß becomes "Ss" (str.title, str.capitalize).
void append_title(std::string& out, uint32_t c) {
  if (c == 0xDF) {
    out += "Ss";
  } else {
    append_cp(out, cp_upper(c));
  }
}

void append_upper(std::string& out, uint32_t c) {
  if (c == 0xDF) {
    out += "SS";
  } else {
    append_cp(out, cp_upper(c));
  }
}

bool is_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

}  // namespace

std::string str_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  if (is_ascii(s)) {
    for (char c : s) out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    return out;
  }
  for (uint32_t c : utf8_decode(s)) append_lower(out, c);
  return out;
}

std::string str_upper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  if (is_ascii(s)) {
    for (char c : s) out += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
    return out;
  }
  for (uint32_t c : utf8_decode(s)) append_upper(out, c);
  return out;
}

std::string str_capitalize(std::string_view s) {
  std::vector<uint32_t> cps = utf8_decode(s);
  std::string out;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (i == 0) {
      append_title(out, cps[i]);
    } else {
      append_lower(out, cps[i]);
    }
  }
  return out;
}

std::string str_title(std::string_view s) {
  std::string out;
  bool previous_cased = false;
  for (uint32_t c : utf8_decode(s)) {
    if (previous_cased) {
      append_lower(out, c);
    } else {
      append_title(out, c);
    }
    previous_cased = cp_cased(c);
  }
  return out;
}

std::string jinja_title(std::string_view s) {
  std::string out;
  bool word_start = true;
  for (uint32_t c : utf8_decode(s)) {
    bool sep = c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f) || c == 0x85 ||
               c == 0xa0 || c == 0x3000 || (c >= 0x2000 && c <= 0x200a) || c == '-' || c == '(' ||
               c == '{' || c == '[' || c == '<';
    if (sep) {
      append_cp(out, c);
      word_start = true;
    } else {
      if (word_start) {
        append_upper(out, c);
      } else {
        append_lower(out, c);
      }
      word_start = false;
    }
  }
  return out;
}

void Value::throw_type_error(const char* expected, const char* got) {
  throw_render_error(fmt::format("expected {}, got {}", expected, got));
}

void throw_render_error(const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, message);
}

}  // namespace kpt::jinja
