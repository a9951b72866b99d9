#include "cli/json_inputs.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace kpt::cli {

using nlohmann::json;

namespace {
std::vector<std::vector<int64_t>> read_matrix(const json& root, const char* key, const std::string& source,
                                              bool required) {
  std::vector<std::vector<int64_t>> rows;
  auto it = root.find(key);
  if (it == root.end() || it->is_null()) {
    if (required) throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: missing '{}' (a list of lists of integers)", source, key));
    return rows;
  }
  if (!it->is_array()) {
    throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: '{}' must be a list of lists of integers", source, key));
  }
  for (size_t b = 0; b < it->size(); ++b) {
    const json& row = (*it)[b];
    if (!row.is_array()) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("{}: {}[{}] must be a list of integers, got {}", source, key, b, row.type_name()));
    }
    std::vector<int64_t> r;
    for (size_t s = 0; s < row.size(); ++s) {
      if (!row[s].is_number_integer()) {
        throw Error(ErrorCode::kInvalidArgument,
                    fmt::format("{}: {}[{}][{}] must be an integer, got {}", source, key, b, s, row[s].dump()));
      }
      r.push_back(row[s].get<int64_t>());
    }
    rows.push_back(std::move(r));
  }
  return rows;
}
}  // namespace

ForwardInputs parse_inputs_json(const std::string& text, const std::string& source) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: not valid JSON ({})", source, e.what()));
  }
  if (!root.is_object()) throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: must be a JSON object", source));
  for (auto& [k, _] : root.items()) {
    if (k != "input_ids" && k != "attention_mask" && k != "token_type_ids") {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("{}: unknown key '{}' (expected input_ids, attention_mask, token_type_ids)", source, k));
    }
  }
  ForwardInputs in;
  in.input_ids = read_matrix(root, "input_ids", source, true);
  in.attention_mask = read_matrix(root, "attention_mask", source, false);
  in.token_type_ids = read_matrix(root, "token_type_ids", source, false);
  return in;
}

ForwardInputs read_inputs_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error(ErrorCode::kNotFound, fmt::format("cannot read inputs file {}", path));
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_inputs_json(ss.str(), path);
}

}  // namespace kpt::cli
