// Next-token choice with transformers' semantics and order: repetition penalty, then (when
// sampling) temperature, top-k, top-p. Seeded: the same seed gives the same tokens.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kpt/engine.h"

namespace kpt::runtime {

// Throws kInvalidArgument naming the bad option.
void validate_sampling(const GenerateOptions& options);

// logits are modified in place. `history` are the ids seen so far (prompt + generated).
void apply_repetition_penalty(std::span<float> logits, std::span<const int64_t> history, double penalty);
int64_t argmax(std::span<const float> logits);

class Sampler {
 public:
  explicit Sampler(uint64_t seed);
  int64_t next(std::span<float> logits, std::span<const int64_t> history, const GenerateOptions& options);
  double uniform();  // [0, 1)

 private:
  uint64_t s_[4];
};

}  // namespace kpt::runtime
