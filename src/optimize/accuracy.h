// The accuracy budget every non-reference level is held to, and the measures behind it.
// The numbers are also in tests/tolerances.json ("accuracy_budget"); a test checks they agree.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kpt::optimize {

struct Budget {
  double min_top1_agreement = 0.99;  // causal LMs: argmax of next-token logits equal to reference
  double max_mean_kl = 0.01;         // causal LMs: mean KL(reference || candidate) in nats
  double min_cosine = 0.999;         // encoders: minimum per-token cosine of hidden states
};

struct Agreement {
  bool causal_lm = false;
  int64_t n_positions = 0;
  double top1_agreement = 1.0;  // causal LMs
  double mean_kl = 0.0;         // causal LMs
  double min_cosine = 1.0;      // encoders
  double mean_cosine = 1.0;     // encoders
  std::string summary() const;
};

// ref/cand: [n_positions, dim] f32 rows (logits for causal LMs, hidden states for encoders);
// valid[i] == 0 skips a padding position.
Agreement compare_outputs(const float* ref, const float* cand, int64_t n_positions, int64_t dim, bool causal_lm,
                          const std::vector<uint8_t>& valid = {});
bool within_budget(const Agreement& a, const Budget& b);

}  // namespace kpt::optimize
