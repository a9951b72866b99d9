// Helpers shared by the C++ tests: paths, fixture loading, tolerances (tests/tolerances.json).
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kpt/engine.h"

namespace kpt::test {

inline std::filesystem::path source_dir() { return KPT_SOURCE_DIR; }
inline std::filesystem::path fixtures_dir() { return source_dir() / "tests" / "fixtures" / "models"; }

inline nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream f(p);
  if (!f) throw std::runtime_error("cannot read " + p.string());
  return nlohmann::json::parse(f);
}

inline double tolerance(const std::string& name) {
  static const nlohmann::json tol = read_json(source_dir() / "tests" / "tolerances.json");
  return tol.at(name).at("rel_max_abs").get<double>();
}

inline std::vector<std::string> fixture_cases() {
  std::vector<std::string> out;
  if (!std::filesystem::exists(fixtures_dir())) return out;
  for (const auto& e : std::filesystem::directory_iterator(fixtures_dir())) {
    if (std::filesystem::exists(e.path() / "config.json")) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline ForwardInputs inputs_from_json(const nlohmann::json& j) {
  ForwardInputs in;
  in.input_ids = j.at("input_ids").get<std::vector<std::vector<int64_t>>>();
  if (j.contains("attention_mask")) in.attention_mask = j["attention_mask"].get<std::vector<std::vector<int64_t>>>();
  if (j.contains("token_type_ids")) in.token_type_ids = j["token_type_ids"].get<std::vector<std::vector<int64_t>>>();
  return in;
}

// max |a - b| over rows whose mask is 1, and max |b| there. a, b: [B, S, D] flattened.
struct Diff {
  double max_abs = 0;
  double max_ref = 0;
  double rel() const { return max_ref > 0 ? max_abs / max_ref : max_abs; }
};
inline Diff masked_diff(const float* a, const float* b, const std::vector<std::vector<int64_t>>& mask, int64_t dim) {
  Diff d;
  const size_t seq = mask[0].size();
  for (size_t r = 0; r < mask.size(); ++r) {
    for (size_t s = 0; s < seq; ++s) {
      if (!mask[r][s]) continue;
      const size_t off = (r * seq + s) * static_cast<size_t>(dim);
      for (int64_t i = 0; i < dim; ++i) {
        d.max_abs = std::max(d.max_abs, static_cast<double>(std::abs(a[off + i] - b[off + i])));
        d.max_ref = std::max(d.max_ref, static_cast<double>(std::abs(b[off + i])));
      }
    }
  }
  return d;
}

}  // namespace kpt::test
