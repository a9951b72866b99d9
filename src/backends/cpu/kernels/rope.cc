#include <cmath>

#include "backends/cpu/kernels/kernels.h"

namespace kpt::cpu {

// transformers' rotate_half: out[i] = x[i] cos - x[i + d/2] sin, out[i + d/2] = x[i + d/2] cos + x[i] sin,
// with the angle pos * inv_freq[i] formed in float32 as transformers does.
void rope(const float* x, const int64_t* positions, int64_t tokens, int64_t n_heads, int64_t head_dim,
          const double* inv_freq, float* out) {
  const int64_t half = head_dim / 2;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tokens; ++t) {
    const float pos = static_cast<float>(positions[t]);
    for (int64_t i = 0; i < half; ++i) {
      const float angle = pos * static_cast<float>(inv_freq[i]);
      const float c = std::cos(angle), s = std::sin(angle);
      for (int64_t h = 0; h < n_heads; ++h) {
        const float* xh = x + (t * n_heads + h) * head_dim;
        float* oh = out + (t * n_heads + h) * head_dim;
        const float a = xh[i], b = xh[i + half];
        oh[i] = a * c - b * s;
        oh[i + half] = b * c + a * s;
      }
    }
  }
}

}  // namespace kpt::cpu
