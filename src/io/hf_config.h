// config.json as written by any transformers version: typed getters whose errors name the file,
// the key, the expected and the actual type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace kpt::io {

class HfConfig {
 public:
  static HfConfig load(const std::string& model_dir);  // reads MODEL_DIR/config.json
  static HfConfig parse(std::string_view text, const std::string& source);

  const std::string& source() const { return source_; }
  const nlohmann::json& raw() const { return json_; }
  std::string model_type() const;                 // required
  std::vector<std::string> architectures() const;  // may be empty

  bool has(const std::string& key) const;  // present and not null
  int64_t get_int(const std::string& key) const;  // required
  int64_t get_int(const std::string& key, int64_t fallback) const;
  std::optional<int64_t> get_optional_int(const std::string& key) const;
  double get_double(const std::string& key) const;
  double get_double(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  // An int or a list of ints (eos_token_id is either); empty when absent or null.
  std::vector<int64_t> get_int_list(const std::string& key) const;
  // A nested object, or nullptr when absent/null; throws when present but not an object.
  const nlohmann::json* get_object(const std::string& key) const;

  [[noreturn]] void fail(const std::string& what) const;

 private:
  nlohmann::json json_;
  std::string source_;
};

// Same getters over a nested object (rope_scaling / rope_parameters).
int64_t json_int(const nlohmann::json& obj, const std::string& key, const std::string& context);
double json_double(const nlohmann::json& obj, const std::string& key, const std::string& context);

}  // namespace kpt::io
