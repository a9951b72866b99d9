// Sentence embeddings from an encoder's last_hidden_state, the way sentence-transformers
// configures the model directory: 1_Pooling/config.json picks the pooling (mean, cls, max,
// mean_sqrt_len, lasttoken) and modules.json says whether a Normalize module follows. Without
// those files: mean pooling + L2 normalization (what OpenAI-style clients expect: unit vectors).
#pragma once

#include <string>
#include <vector>

#include "kpt/tensor.h"

namespace kpt::serve {

struct Pooling {
  enum class Mode { kMean, kCls, kMax, kMeanSqrtLen, kLastToken };
  Mode mode = Mode::kMean;
  bool normalize = true;
  std::string describe() const;

  // Throws kInvalidFile naming the file when the sentence-transformers files are malformed.
  static Pooling from_model_dir(const std::string& dir);
  // hidden [B, S, H] f32, mask [B][S] (1 real token): one vector per row.
  std::vector<std::vector<float>> apply(const Tensor& hidden, const std::vector<std::vector<int64_t>>& mask) const;
};

}  // namespace kpt::serve
