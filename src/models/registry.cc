#include <map>

#include <fmt/format.h>

#include "models/model.h"

namespace kpt::models {

namespace {
// The one place that maps config.model_type to a family builder.
const std::map<std::string, FamilyBuilder>& registry() {
  static const std::map<std::string, FamilyBuilder> kRegistry = {
      {"bert", &build_bert},
      {"gpt2", &build_gpt2},
      {"llama", &build_llama},
      {"mistral", &build_llama},
      {"qwen2", &build_llama},
  };
  return kRegistry;
}
}  // namespace

std::vector<std::string> supported_model_types() {
  std::vector<std::string> out;
  for (const auto& [k, _] : registry()) out.push_back(k);
  return out;
}

FamilyBuilder find_builder(const std::string& model_type) {
  auto it = registry().find(model_type);
  if (it == registry().end()) {
    throw Error(ErrorCode::kUnsupported, fmt::format("model_type '{}' is not supported; supported: {}", model_type,
                                                     fmt::join(supported_model_types(), ", ")));
  }
  return it->second;
}

BuiltModel build_model(const io::HfConfig& config, const io::WeightStore& store) {
  return find_builder(config.model_type())(config, store);
}

}  // namespace kpt::models
