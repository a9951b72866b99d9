// Residual add + LayerNorm/RMSNorm in one pass over each row, plus the GLU and standalone
// activations used where a GEMM epilogue cannot take them. Statistics in fp32 with a two-pass
// variance (exact enough for fp32 tolerances; the reference accumulates in double).
#include <cmath>
#include <cstring>
#include <vector>

#include "backends/cpu/kernels/fast_kernels.h"
#include "graph/ir.h"

namespace kpt::cpu::fast {

namespace {

using graph::OpKind;

// One row: out = norm(a + b). `tmp` holds the sum so a and b are read once.
__attribute__((target_clones("arch=x86-64-v3", "default"))) void add_norm_row(
    const float* a, const float* b, const float* gamma, const float* beta, int64_t dim, float eps, bool rms,
    float* tmp, float* out) {
  float sum = 0;
  if (b != nullptr) {
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < dim; ++i) {
      tmp[i] = a[i] + b[i];
      sum += tmp[i];
    }
  } else {
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < dim; ++i) {
      tmp[i] = a[i];
      sum += tmp[i];
    }
  }
  const float n = static_cast<float>(dim);
  if (rms) {
    float ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < dim; ++i) ss += tmp[i] * tmp[i];
    const float inv = 1.0f / std::sqrt(ss / n + eps);
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i) out[i] = gamma[i] * (tmp[i] * inv);
    return;
  }
  const float mean = sum / n;
  float var = 0;
#pragma omp simd reduction(+ : var)
  for (int64_t i = 0; i < dim; ++i) var += (tmp[i] - mean) * (tmp[i] - mean);
  const float inv = 1.0f / std::sqrt(var / n + eps);
#pragma omp simd
  for (int64_t i = 0; i < dim; ++i) out[i] = (tmp[i] - mean) * inv * gamma[i] + beta[i];
}

inline float act_one(int64_t act, float v) {
  switch (static_cast<OpKind>(act)) {
    case OpKind::kGeluErf: return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752440f));
    case OpKind::kGeluTanh: return 0.5f * v * (1.0f + std::tanh(0.79788456080286535588f * (v + 0.044715f * v * v * v)));
    case OpKind::kSilu: return v / (1.0f + std::exp(-v));
    case OpKind::kRelu: return v > 0.0f ? v : 0.0f;
    default: return v;
  }
}

__attribute__((target_clones("arch=x86-64-v3", "default"))) void glu_row(const float* x, int64_t f, int64_t act,
                                                                          float* out) {
  if (static_cast<OpKind>(act) == OpKind::kSilu) {
#pragma omp simd
    for (int64_t i = 0; i < f; ++i) out[i] = x[i] / (1.0f + std::exp(-x[i])) * x[f + i];
    return;
  }
  for (int64_t i = 0; i < f; ++i) out[i] = act_one(act, x[i]) * x[f + i];
}

}  // namespace

void add_norm(const float* a, const float* b, const float* gamma, const float* beta, int64_t rows, int64_t dim,
              double eps, bool rms, float* out) {
#pragma omp parallel
  {
    std::vector<float> tmp(static_cast<size_t>(dim));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      add_norm_row(a + r * dim, b != nullptr ? b + r * dim : nullptr, gamma, beta, dim, static_cast<float>(eps), rms,
                   tmp.data(), out + r * dim);
    }
  }
}

void glu(const float* x, int64_t rows, int64_t f, int64_t act, float* out) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) glu_row(x + r * 2 * f, f, act, out + r * f);
}

void activation(int64_t act, const float* x, int64_t n, float* out) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = act_one(act, x[i]);
}

}  // namespace kpt::cpu::fast
