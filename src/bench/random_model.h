// Random-weight checkpoints made from a config.json alone, so the benchmark suites run the
// official shapes of popular models without downloads and without Python. Speed does not
// depend on weight values; results say "random weights".
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kpt/tensor.h"

namespace kpt::bench {

// One tensor to write: its Hugging Face checkpoint name and shape, and how to fill it.
struct RandomTensor {
  std::string name;
  Shape shape;
  enum class Fill { kNormalish, kOnes, kZeros } fill = Fill::kNormalish;
};

// The tensors a checkpoint of this config holds, named as transformers saves them
// (model_type bert, gpt2, llama, mistral, qwen2). Throws kUnsupported for other types.
std::vector<RandomTensor> random_checkpoint_layout(const nlohmann::json& config);

// Writes config.json and model.safetensors (f32) into `dir`. Weights are uniform with the
// standard deviation of config.initializer_range (0.02 by default), from a fixed seed; norm
// weights are 1 and biases 0. Streams tensor by tensor: memory stays small for 1B models.
void write_random_checkpoint(const nlohmann::json& config, const std::string& dir,
                             uint64_t seed = 0);

// A cached random checkpoint for `config_path` under $XDG_CACHE_HOME/kernelpytorch/random-models
// (or ~/.cache/...), made on first use; returns its directory.
std::string cached_random_model(const std::string& config_path, uint64_t seed = 0);

}  // namespace kpt::bench
