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

// The sampling choice of Sampler::next (after the repetition penalty, do_sample on) for one
// uniform draw r in [0, 1): temperature, top-k, top-p in transformers' order, probabilities in
// double over the kept logits sorted descending (ties: lower id first), then the first token whose
// running sum passes r * total. The twin of the CUDA backend's on-device sampler.
int64_t choose_sampled(std::span<const float> logits, const GenerateOptions& options, double r);

class Sampler {
 public:
  explicit Sampler(uint64_t seed);
  int64_t next(std::span<float> logits, std::span<const int64_t> history, const GenerateOptions& options);
  double uniform();  // [0, 1)

 private:
  uint64_t s_[4];
};

}  // namespace kpt::runtime
