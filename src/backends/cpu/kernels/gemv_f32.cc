// fp32 GEMM for 2-16 rows (batched decode at levels conservative/balanced): one pass over each
// weight row, every row of x multiplied against it while it is in registers. oneDNN's matmul is
// excellent at 1 row (it streams SmolLM2's 538 MB of fp32 weights in ~25 ms on one core) but took
// 91 ms for 2 rows and 131 ms for 8 on the same core, so a batched decode step was slower per
// token than a single one; here the weights are read once per step whatever the row count.
// Each output's sum runs over k in a fixed order, so a row's result does not depend on the others.
#include <algorithm>

#include <immintrin.h>

#include "backends/cpu/kernels/epilogue.h"
#include "backends/cpu/kernels/fast_kernels.h"

namespace kpt::cpu::fast {

namespace {

constexpr int64_t kMaxRows = 8;

void dots_portable(const float* x, int64_t rows, int64_t n_in, const float* w, float* dots) {
  for (int64_t r = 0; r < rows; ++r) {
    float acc = 0;
    for (int64_t i = 0; i < n_in; ++i) acc += x[r * n_in + i] * w[i];
    dots[r] = acc;
  }
}

__attribute__((target("avx2,fma"), always_inline)) inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// kRows accumulators, one per row of x; the weight vector is loaded once per 8 inputs.
template <int kRows>
__attribute__((target("avx2,fma"))) void dots_avx2(const float* x, int64_t n_in, const float* w, float* dots) {
  __m256 acc[kRows];
  for (int r = 0; r < kRows; ++r) acc[r] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n_in; i += 8) {
    const __m256 wv = _mm256_loadu_ps(w + i);
    for (int r = 0; r < kRows; ++r) acc[r] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + r * n_in + i), acc[r]);
  }
  for (int r = 0; r < kRows; ++r) {
    float t = hsum(acc[r]);
    for (int64_t j = i; j < n_in; ++j) t += x[r * n_in + j] * w[j];
    dots[r] = t;
  }
}


using DotsFn = void (*)(const float*, int64_t, const float*, float*);

DotsFn avx2_for(int64_t rows) {
  switch (rows) {
    case 1: return dots_avx2<1>;
    case 2: return dots_avx2<2>;
    case 3: return dots_avx2<3>;
    case 4: return dots_avx2<4>;
    case 5: return dots_avx2<5>;
    case 6: return dots_avx2<6>;
    case 7: return dots_avx2<7>;
    default: return dots_avx2<8>;
  }
}

}  // namespace

void gemv_f32_rows(const float* x, int64_t rows, const float* w, const float* bias, const float* residual, int64_t act,
                   int64_t n_in, int64_t n_out, float* out) {
  KPT_CHECK(rows >= 1, "gemv_f32_rows needs at least one row");
  const bool avx2 = has_avx2();
  const DotsFn full = avx2_for(kMaxRows), last = avx2_for((rows - 1) % kMaxRows + 1);
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < n_out; ++o) {
    // Rows in chunks of 8: the output's weight row comes from memory once and from L1 after that.
    for (int64_t r0 = 0; r0 < rows; r0 += kMaxRows) {
      const int64_t n = std::min(kMaxRows, rows - r0);
      float dots[kMaxRows];
      if (avx2) {
        (n == kMaxRows ? full : last)(x + r0 * n_in, n_in, w + o * n_in, dots);
      } else {
        dots_portable(x + r0 * n_in, n, n_in, w + o * n_in, dots);
      }
      epilogue_column(dots, n, o, n_out, bias, act, residual != nullptr ? residual + r0 * n_out : nullptr,
                      out + r0 * n_out);
    }
  }
}

}  // namespace kpt::cpu::fast
