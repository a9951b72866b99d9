#include <cmath>
#include <cstring>

#include "backends/cpu/kernels/kernels.h"

namespace kpt::cpu {

void embedding(const float* table, int64_t dim, const int64_t* ids, int64_t n, float* out) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(out + i * dim, table + ids[i] * dim, static_cast<size_t>(dim) * sizeof(float));
  }
}

void add(const float* a, const float* b, int64_t n, float* out) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void mul(const float* a, const float* b, int64_t n, float* out) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

void gelu_erf(const float* x, int64_t n, float* out) {
  constexpr float kInvSqrt2 = 0.70710678118654752440f;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kInvSqrt2));
}

void gelu_tanh(const float* x, int64_t n, float* out) {
  // transformers' NewGELU: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  constexpr float kSqrt2OverPi = 0.79788456080286535588f;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    out[i] = 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * (v + 0.044715f * v * v * v)));
  }
}

void silu(const float* x, int64_t n, float* out) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] / (1.0f + std::exp(-x[i]));
}

void relu(const float* x, int64_t n, float* out) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void gather_rows(const float* x, const int64_t* rows, int64_t batch, int64_t seq, int64_t n_rows, int64_t dim,
                 float* out) {
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t r = 0; r < n_rows; ++r) {
      std::memcpy(out + (b * n_rows + r) * dim, x + (b * seq + rows[b * n_rows + r]) * dim,
                  static_cast<size_t>(dim) * sizeof(float));
    }
  }
}

}  // namespace kpt::cpu
