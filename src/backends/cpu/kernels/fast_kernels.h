// Fast CPU kernels used by the fast executable (conservative and higher levels). Each has a
// reference twin in kernels.h that the tests in tests/cpp/cpu compare it with. Hot loops are
// compiled twice (x86-64-v3: AVX2+FMA, and the portable baseline) and picked at load time by
// the CPU's features (GCC target_clones); threads come from the one OpenMP pool.
#pragma once

#include <cstdint>

#include "backends/cpu/backend.h"

namespace kpt::cpu::fast {

// True when this CPU runs the AVX2+FMA intrinsic paths (asked once; the portable twins otherwise).
inline bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

// Activation codes are graph::OpKind values of kGeluErf/kGeluTanh/kSilu/kRelu, or -1 for none.
void activation(int64_t act, const float* x, int64_t n, float* out);

// out [rows, dim] = norm(a + b) (b may be null). rms: RMSNorm (beta ignored), else LayerNorm.
void add_norm(const float* a, const float* b, const float* gamma, const float* beta, int64_t rows, int64_t dim,
              double eps, bool rms, float* out);

// x [rows, 2F] = [gate | up] -> out [rows, F] = act(gate) * up.
void glu(const float* x, int64_t rows, int64_t f, int64_t act, float* out);

// Attention over the paged KV cache that never stores the [S, S] score matrix: for each query
// tile and each cache block it computes the block's scores, updates the running max / sum /
// output (online softmax), and moves on. Grouped-query heads that share a KV head read each
// key once. RoPE (when positions != null) is applied to Q and K on the way in; K/V of this step
// are written into the cache first. Row strides let q/k/v be views into one packed QKV GEMM output.
struct AttentionArgs {
  const float* q = nullptr;  // [B, S, n_heads, hd] rows of q_stride floats
  const float* k = nullptr;  // [B, S, n_kv, hd] rows of kv_stride floats
  const float* v = nullptr;
  int64_t q_stride = 0;
  int64_t kv_stride = 0;
  const int64_t* positions = nullptr;  // [B, S] or null: no RoPE
  const double* inv_freq = nullptr;    // [hd / 2]
  int64_t batch = 0, seq = 0, n_heads = 0;
  bool causal = true;
  double scale = 1.0;
  int64_t window = 0;  // 0: none
  int64_t layer = 0;
  float* out = nullptr;  // [B, S, n_heads, hd]
};
void attention_tiled(const AttentionArgs& args, const AttentionContext& ctx);

// fp32 GEMM for few rows (batched decode): out [rows, n_out] = act(x [rows, n_in] . w^T + bias) +
// residual, w [n_out, n_in] row-major (nn.Linear); rows in chunks of 8 against each weight row;
// each output's sum in a fixed k order, so a row's result does not depend on the other rows.
void gemv_f32_rows(const float* x, int64_t rows, const float* w, const float* bias, const float* residual, int64_t act,
                   int64_t n_in, int64_t n_out, float* out);

// Weight-only int8 GEMM for few rows (decode): out [rows, n_out] = x [rows, n_in] . w^T + bias,
// then act, then + residual [rows, n_out], where w[o, i] = scale[o, i / group] * q[o, i] (q in
// +-127) and scale is [n_out, ceil(n_in / group)]. x enters as its int16 rounding
// (quantize_activations_i16: 2^-16 relative), so each group's dot product is an exact int32 sum.
void gemm_int8_weights(const float* x, const int8_t* q, const float* scale, int64_t group, const float* bias,
                       const float* residual, int64_t act, int64_t rows, int64_t n_in, int64_t n_out, float* out);
// Per row and group of `group` values: xs = max|x| / 32767 (1 for an all-zero group), xq =
// round(x / xs) in +-32767. xq [rows, n_in], xs [rows, ceil(n_in / group)].
void quantize_activations_i16(const float* x, int64_t rows, int64_t n_in, int64_t group, int16_t* xq, float* xs);
// out = xs * xq of quantize_activations_i16, in fp32: the many-row (prefill) GEMMs of an int8
// model run on these values, so that prefill and decode multiply the same numbers.
void round_activations_i16(const float* x, int64_t rows, int64_t n_in, int64_t group, float* out);

}  // namespace kpt::cpu::fast
