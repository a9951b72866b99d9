#include "backends/cpu/kernels/kernels.h"

namespace kpt::cpu {

// Reference GEMM: each output is one dot product over contiguous rows of x and w (w is stored
// [n_out, n_in], as in nn.Linear). Simple on purpose; the fast levels use oneDNN.
void linear(const float* x, const float* w, const float* bias, int64_t rows, int64_t n_in, int64_t n_out,
            float* out) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < n_out; ++o) {
      const float* xr = x + r * n_in;
      const float* wr = w + o * n_in;
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int64_t i = 0; i < n_in; ++i) acc += xr[i] * wr[i];
      out[r * n_out + o] = acc + (bias != nullptr ? bias[o] : 0.0f);
    }
  }
}

}  // namespace kpt::cpu
