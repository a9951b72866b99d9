// Typed access to tokenizer.json fields; every failure names the JSON path and what was found.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tokenizer/internal.h"

namespace kpt::tok {

inline std::string json_kind(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "an integer";
    case Json::value_t::number_float:
      return "a number";
    default:
      return "an unexpected value";
  }
}

inline std::string child_path(const std::string& path, std::string_view key) {
  return path + "." + std::string(key);
}

inline void expect_object(const Json& j, const std::string& path) {
  if (!j.is_object()) fail_file(path, "expected an object, got " + json_kind(j));
}

// nullptr when absent or null (serde treats both as None).
inline const Json* find_field(const Json& j, std::string_view key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

inline const Json& require_field(const Json& j, std::string_view key, const std::string& path) {
  const Json* f = find_field(j, key);
  if (f == nullptr) fail_file(child_path(path, key), "missing required field");
  return *f;
}

inline std::string as_string(const Json& j, const std::string& path) {
  if (!j.is_string()) fail_file(path, "expected a string, got " + json_kind(j));
  return j.get<std::string>();
}

inline bool as_bool(const Json& j, const std::string& path) {
  if (!j.is_boolean()) fail_file(path, "expected a boolean, got " + json_kind(j));
  return j.get<bool>();
}

inline uint64_t as_uint(const Json& j, const std::string& path) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer() && j.get<int64_t>() >= 0)
    return static_cast<uint64_t>(j.get<int64_t>());
  fail_file(path, "expected a non-negative integer, got " + json_kind(j));
}

inline double as_double(const Json& j, const std::string& path) {
  if (!j.is_number()) fail_file(path, "expected a number, got " + json_kind(j));
  return j.get<double>();
}

inline std::string get_string(const Json& j, std::string_view key, const std::string& path) {
  return as_string(require_field(j, key, path), child_path(path, key));
}

inline std::optional<std::string> get_opt_string(const Json& j, std::string_view key,
                                                 const std::string& path) {
  const Json* f = find_field(j, key);
  if (f == nullptr) return std::nullopt;
  return as_string(*f, child_path(path, key));
}

inline bool get_bool(const Json& j, std::string_view key, const std::string& path, bool fallback) {
  const Json* f = find_field(j, key);
  return f == nullptr ? fallback : as_bool(*f, child_path(path, key));
}

inline bool get_required_bool(const Json& j, std::string_view key, const std::string& path) {
  return as_bool(require_field(j, key, path), child_path(path, key));
}

inline uint64_t get_uint(const Json& j, std::string_view key, const std::string& path,
                         uint64_t fallback) {
  const Json* f = find_field(j, key);
  return f == nullptr ? fallback : as_uint(*f, child_path(path, key));
}

// The "type" tag of a pipeline piece.
inline std::string type_of(const Json& j, const std::string& path) {
  expect_object(j, path);
  return get_string(j, "type", path);
}

// A single Unicode scalar given as a JSON string (serde's `char`).
char32_t get_char(const Json& j, std::string_view key, const std::string& path);

}  // namespace kpt::tok
