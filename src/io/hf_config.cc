#include "io/hf_config.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "kpt/status.h"

namespace kpt::io {

using nlohmann::json;

namespace {
const char* type_of(const json& j) { return j.type_name(); }
}  // namespace

HfConfig HfConfig::load(const std::string& model_dir) {
  std::filesystem::path path = std::filesystem::path(model_dir) / "config.json";
  if (!std::filesystem::is_directory(model_dir)) {
    throw Error(ErrorCode::kNotFound, fmt::format("model directory {} does not exist", model_dir));
  }
  std::ifstream in(path);
  if (!in) throw Error(ErrorCode::kNotFound, fmt::format("{} not found: a Hugging Face model directory needs config.json", path.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path.string());
}

HfConfig HfConfig::parse(std::string_view text, const std::string& source) {
  HfConfig c;
  c.source_ = source;
  try {
    c.json_ = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kInvalidFile, fmt::format("{}: not valid JSON ({})", source, e.what()));
  }
  if (!c.json_.is_object()) throw Error(ErrorCode::kInvalidFile, fmt::format("{}: must be a JSON object", source));
  return c;
}

void HfConfig::fail(const std::string& what) const {
  throw Error(ErrorCode::kInvalidFile, fmt::format("{}: {}", source_, what));
}

std::string HfConfig::model_type() const {
  auto it = json_.find("model_type");
  if (it == json_.end() || !it->is_string()) fail("missing string key 'model_type'");
  return it->get<std::string>();
}

std::vector<std::string> HfConfig::architectures() const {
  std::vector<std::string> out;
  auto it = json_.find("architectures");
  if (it == json_.end() || it->is_null()) return out;
  if (!it->is_array()) fail("'architectures' must be a list of strings");
  for (const auto& a : *it) {
    if (!a.is_string()) fail("'architectures' must be a list of strings");
    out.push_back(a.get<std::string>());
  }
  return out;
}

bool HfConfig::has(const std::string& key) const {
  auto it = json_.find(key);
  return it != json_.end() && !it->is_null();
}

int64_t json_int(const json& obj, const std::string& key, const std::string& context) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    throw Error(ErrorCode::kInvalidFile, fmt::format("{}: missing integer key '{}'", context, key));
  }
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_float()) {
    double d = it->get<double>();
    if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
  }
  throw Error(ErrorCode::kInvalidFile,
              fmt::format("{}: '{}' must be an integer, got {} {}", context, key, type_of(*it), it->dump()));
}

double json_double(const json& obj, const std::string& key, const std::string& context) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    throw Error(ErrorCode::kInvalidFile, fmt::format("{}: missing number key '{}'", context, key));
  }
  if (!it->is_number()) {
    throw Error(ErrorCode::kInvalidFile,
                fmt::format("{}: '{}' must be a number, got {} {}", context, key, type_of(*it), it->dump()));
  }
  return it->get<double>();
}

int64_t HfConfig::get_int(const std::string& key) const { return json_int(json_, key, source_); }
int64_t HfConfig::get_int(const std::string& key, int64_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}
std::optional<int64_t> HfConfig::get_optional_int(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return get_int(key);
}
double HfConfig::get_double(const std::string& key) const { return json_double(json_, key, source_); }
double HfConfig::get_double(const std::string& key, double fallback) const {
  return has(key) ? get_double(key) : fallback;
}

bool HfConfig::get_bool(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  const auto& v = json_.at(key);
  if (!v.is_boolean()) fail(fmt::format("'{}' must be true or false, got {}", key, v.dump()));
  return v.get<bool>();
}

std::string HfConfig::get_string(const std::string& key, const std::string& fallback) const {
  if (!has(key)) return fallback;
  const auto& v = json_.at(key);
  if (!v.is_string()) fail(fmt::format("'{}' must be a string, got {}", key, v.dump()));
  return v.get<std::string>();
}

std::vector<int64_t> HfConfig::get_int_list(const std::string& key) const {
  std::vector<int64_t> out;
  if (!has(key)) return out;
  const auto& v = json_.at(key);
  if (v.is_number_integer()) {
    out.push_back(v.get<int64_t>());
  } else if (v.is_array()) {
    for (const auto& x : v) {
      if (!x.is_number_integer()) fail(fmt::format("'{}' must be an integer or a list of integers", key));
      out.push_back(x.get<int64_t>());
    }
  } else {
    fail(fmt::format("'{}' must be an integer or a list of integers, got {}", key, v.dump()));
  }
  return out;
}

const json* HfConfig::get_object(const std::string& key) const {
  if (!has(key)) return nullptr;
  const auto& v = json_.at(key);
  if (!v.is_object()) fail(fmt::format("'{}' must be an object, got {}", key, v.dump()));
  return &v;
}

}  // namespace kpt::io
