#include <cmath>

#include "backends/cpu/kernels/kernels.h"

namespace kpt::cpu {

// Statistics accumulate in double: the reference should not add error of its own.
void layer_norm(const float* x, const float* gamma, const float* beta, int64_t rows, int64_t dim, double eps,
                float* out) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    double mean = 0;
    for (int64_t i = 0; i < dim; ++i) mean += xr[i];
    mean /= static_cast<double>(dim);
    double var = 0;
    for (int64_t i = 0; i < dim; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= static_cast<double>(dim);
    const double inv = 1.0 / std::sqrt(var + eps);
    float* o = out + r * dim;
    for (int64_t i = 0; i < dim; ++i) o[i] = static_cast<float>((xr[i] - mean) * inv) * gamma[i] + beta[i];
  }
}

void rms_norm(const float* x, const float* gamma, int64_t rows, int64_t dim, double eps, float* out) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(dim) + eps);
    float* o = out + r * dim;
    for (int64_t i = 0; i < dim; ++i) o[i] = gamma[i] * static_cast<float>(xr[i] * inv);
  }
}

}  // namespace kpt::cpu
