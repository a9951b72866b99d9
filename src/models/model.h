// What every family file provides: config -> weight schema -> graph.
#pragma once

#include <string>
#include <vector>

#include "graph/ir.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "kpt/engine.h"

namespace kpt::models {

// One expected tensor of a checkpoint (name without the checkpoint's prefix).
struct WeightSpec {
  std::string name;
  Shape shape;
  bool optional = false;
  bool unprefixed = false;  // lives outside the checkpoint's prefix (lm_head.weight)
};

struct WeightSchema {
  std::string family;
  std::vector<std::string> prefixes;  // candidate prefixes, e.g. {"", "bert."}; first match wins
  std::string anchor;                  // a tensor every checkpoint of the family has
  std::vector<WeightSpec> tensors;
  // Tensors a checkpoint may carry that this model does not use (task heads, buffers), as
  // patterns with '*' matching any run of characters (matched against the full name).
  std::vector<std::string> known_unused;
};

struct BuiltModel {
  ModelInfo info;
  graph::Graph graph;
};

using FamilyBuilder = BuiltModel (*)(const io::HfConfig& config, const io::WeightStore& store);

// registry.cc: config.model_type -> builder. Throws kUnsupported naming the known types.
FamilyBuilder find_builder(const std::string& model_type);
std::vector<std::string> supported_model_types();
BuiltModel build_model(const io::HfConfig& config, const io::WeightStore& store);

BuiltModel build_bert(const io::HfConfig& config, const io::WeightStore& store);
BuiltModel build_gpt2(const io::HfConfig& config, const io::WeightStore& store);
BuiltModel build_llama(const io::HfConfig& config, const io::WeightStore& store);  // llama, mistral, qwen2

}  // namespace kpt::models
