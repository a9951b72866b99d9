// Weight-only int8 GEMM for decode (a few rows): int8 weights in groups of `group` with one fp32
// scale each. At batch 1 this reads 4x fewer bytes than fp32 weights, and decode is
// bandwidth-bound -- provided the kernel keeps up with memory. Converting every int8 weight to
// fp32 (sign-extend, convert, FMA: 16 instructions per 32 weights) did not: 9 GB/s with the weights
// in cache, 12 GB/s streaming, on one AVX2 core. Here each row of x is rounded once per call to
// int16 in the same groups (symmetric, scale max|x| / 32767: a relative rounding of 2^-16, far
// below fp32 GEMM noise in a 1e-4 budget), and the group's dot product is an exact int32 sum of
// int8 x int16 products (vpmaddwd: 10 instructions per 32 weights), scaled once per group.
#include <algorithm>
#include <cmath>
#include <vector>

#include <immintrin.h>

#include "backends/cpu/kernels/epilogue.h"
#include "backends/cpu/kernels/fast_kernels.h"
#include "graph/ir.h"

namespace kpt::cpu::fast {

namespace {

constexpr int64_t kMaxRows = 8;

// Portable twin: the same integer group sums, scaled once per group.
void dot_rows_portable(const int16_t* xq, const float* xs, int64_t rows, int64_t n_in, int64_t n_groups,
                       const int8_t* q, const float* scale, int64_t group, float* dots) {
  for (int64_t r = 0; r < rows; ++r) {
    const int16_t* xr = xq + r * n_in;
    float total = 0;
    for (int64_t c0 = 0, gi = 0; c0 < n_in; c0 += group, ++gi) {
      const int64_t c1 = std::min(n_in, c0 + group);
      int32_t acc = 0;
      for (int64_t i = c0; i < c1; ++i) acc += static_cast<int32_t>(xr[i]) * static_cast<int32_t>(q[i]);
      total += static_cast<float>(acc) * (scale[gi] * xs[r * n_groups + gi]);
    }
    dots[r] = total;
  }
}

// One group of 32: int8 weights widened to int16 (two 16-lane halves), vpmaddwd with the int16
// activations gives pair sums of at most 2 * 127 * 32767 (no overflow), 8 int32 lanes in all.
__attribute__((target("avx2,fma"), always_inline)) inline __m256 group_dot_avx2(const int8_t* q, const int16_t* x) {
  // Each half sign-extended straight from memory (vpmovsxbw with a load: no lane extract).
  const __m256i lo = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
  const __m256i hi = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16)));
  const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
  const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 16));
  return _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_madd_epi16(lo, x0), _mm256_madd_epi16(hi, x1)));
}

__attribute__((target("avx2,fma"))) void dot_rows_avx2(const int16_t* xq, const float* xs, int64_t rows,
                                                        int64_t n_in, int64_t n_groups, const int8_t* q,
                                                        const float* scale, float* dots) {
  constexpr int64_t kGroup = 32;
  for (int64_t r = 0; r < rows; ++r) {
    const int16_t* xr = xq + r * n_in;
    const float* xsr = xs + r * n_groups;
    // Two groups per iteration into two accumulators: independent FMA chains.
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0, gi = 0;
    for (; i + 2 * kGroup <= n_in; i += 2 * kGroup, gi += 2) {
      acc0 = _mm256_fmadd_ps(group_dot_avx2(q + i, xr + i), _mm256_set1_ps(scale[gi] * xsr[gi]), acc0);
      acc1 = _mm256_fmadd_ps(group_dot_avx2(q + i + kGroup, xr + i + kGroup),
                             _mm256_set1_ps(scale[gi + 1] * xsr[gi + 1]), acc1);
    }
    for (; i + kGroup <= n_in; i += kGroup, ++gi) {
      acc0 = _mm256_fmadd_ps(group_dot_avx2(q + i, xr + i), _mm256_set1_ps(scale[gi] * xsr[gi]), acc0);
    }
    const __m256 acc = _mm256_add_ps(acc0, acc1);
    const __m128 lo = _mm256_castps256_ps128(acc), hi = _mm256_extractf128_ps(acc, 1);
    __m128 s4 = _mm_add_ps(lo, hi);
    s4 = _mm_hadd_ps(s4, s4);
    s4 = _mm_hadd_ps(s4, s4);
    float total = _mm_cvtss_f32(s4);
    if (i < n_in) {  // partial last group; its scales exist only when the group does
      int32_t tail = 0;
      for (; i < n_in; ++i) tail += static_cast<int32_t>(xr[i]) * static_cast<int32_t>(q[i]);
      total += static_cast<float>(tail) * (scale[gi] * xsr[gi]);
    }
    dots[r] = total;
  }
}


}  // namespace

// Cloned for x86-64-v3: there the max and the rounding (roundps) vectorize; the baseline build
// would call nearbyint per element (3% of an int8 decode step).
__attribute__((target_clones("arch=x86-64-v3", "default"))) void quantize_activations_i16(
    const float* x, int64_t rows, int64_t n_in, int64_t group, int16_t* xq, float* xs) {
  const int64_t n_groups = (n_in + group - 1) / group;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n_in;
    for (int64_t gi = 0; gi < n_groups; ++gi) {
      const int64_t c0 = gi * group, c1 = std::min(n_in, c0 + group);
      float amax = 0;
#pragma omp simd reduction(max : amax)
      for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::abs(xr[c]));
      const float s = amax > 0 ? amax / 32767.0f : 1.0f;
      const float inv = 1.0f / s;
      xs[r * n_groups + gi] = s;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) {
        // min/max, not clamp: clamp's branches stop vectorization
        xq[r * n_in + c] = static_cast<int16_t>(std::min(std::max(std::nearbyint(xr[c] * inv), -32767.0f), 32767.0f));
      }
    }
  }
}

void round_activations_i16(const float* x, int64_t rows, int64_t n_in, int64_t group, float* out) {
  const int64_t n_groups = (n_in + group - 1) / group;
#pragma omp parallel
  {
    std::vector<int16_t> xq(static_cast<size_t>(n_in));
    std::vector<float> xs(static_cast<size_t>(n_groups));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      quantize_activations_i16(x + r * n_in, 1, n_in, group, xq.data(), xs.data());
      for (int64_t c = 0; c < n_in; ++c) {
        out[r * n_in + c] = xs[static_cast<size_t>(c / group)] * static_cast<float>(xq[static_cast<size_t>(c)]);
      }
    }
  }
}

void gemm_int8_weights(const float* x, const int8_t* q, const float* scale, int64_t group, const float* bias,
                       const float* residual, int64_t act, int64_t rows, int64_t n_in, int64_t n_out, float* out) {
  const int64_t n_groups = (n_in + group - 1) / group;
  KPT_CHECK(rows <= kMaxRows, "gemm_int8_weights is for decode (<= 8 rows)");
  // The rows' int16 copies: a few KB, made once per call and shared by every output.
  thread_local std::vector<int16_t> xq;
  thread_local std::vector<float> xs;
  xq.resize(static_cast<size_t>(rows * n_in));
  xs.resize(static_cast<size_t>(rows * n_groups));
  quantize_activations_i16(x, rows, n_in, group, xq.data(), xs.data());
  const int16_t* xqp = xq.data();
  const float* xsp = xs.data();
  const bool avx2 = group == 32 && has_avx2();
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < n_out; ++o) {
    float dots[kMaxRows];
    if (avx2) {
      dot_rows_avx2(xqp, xsp, rows, n_in, n_groups, q + o * n_in, scale + o * n_groups, dots);
    } else {
      dot_rows_portable(xqp, xsp, rows, n_in, n_groups, q + o * n_in, scale + o * n_groups, group, dots);
    }
    epilogue_column(dots, rows, o, n_out, bias, act, residual, out);
  }
}

}  // namespace kpt::cpu::fast
