// CUDA kernels of the CUDA backend: host-side launchers over raw device pointers, all on the
// caller's stream. Shapes are checked by the executor; kernels assume them. Activations are fp32;
// bf16 appears only as the A operand of GEMMs at reduced-precision levels (fp32 accumulation).
// Launchers with an `out16` argument can also write their result rounded to bf16 (round to
// nearest even, as f32_to_bf16) for the GEMMs that read it; their fp32 `out` may then be null.
// Each launcher has a reference twin in backends/cpu/kernels, and tests/cuda compares them.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace kpt::cuda {

enum class Unary : int { kGeluErf, kGeluTanh, kSilu, kRelu };
enum class Binary : int { kAdd, kMul };

// out [n, dim] = table [vocab, dim] rows ids [n]
void embedding(const float* table, int64_t dim, const int64_t* ids, int64_t n, float* out, cudaStream_t stream);

void unary(Unary op, const float* x, int64_t n, float* out, cudaStream_t stream, uint16_t* out16 = nullptr);
void binary(Binary op, const float* a, const float* b, int64_t n, float* out, cudaStream_t stream);
// out [n] = act(x [n]) * y [n]: the gated MLP (SwiGLU: act = SiLU) in one launch.
void unary_mul(Unary op, const float* x, const float* y, int64_t n, float* out, cudaStream_t stream,
               uint16_t* out16 = nullptr);

// x/out [rows, dim]; statistics in fp32 (two passes over the row, no E[x^2]-E[x]^2 cancellation).
void layer_norm(const float* x, const float* gamma, const float* beta, int64_t rows, int64_t dim, float eps,
                float* out, cudaStream_t stream, uint16_t* out16 = nullptr);
void rms_norm(const float* x, const float* gamma, int64_t rows, int64_t dim, float eps, float* out,
              cudaStream_t stream, uint16_t* out16 = nullptr);
// Residual add fused in front of the norm: sum [rows, dim] = a + b (written: the residual stream
// needs it), out = norm(sum). sum and out must not alias a or b.
void add_layer_norm(const float* a, const float* b, const float* gamma, const float* beta, int64_t rows, int64_t dim,
                    float eps, float* sum, float* out, cudaStream_t stream, uint16_t* out16 = nullptr);
void add_rms_norm(const float* a, const float* b, const float* gamma, int64_t rows, int64_t dim, float eps, float* sum,
                  float* out, cudaStream_t stream, uint16_t* out16 = nullptr);

// Rotate-half RoPE. x/out [tokens, n_heads, head_dim], positions [tokens], inv_freq [head_dim / 2] (fp32).
void rope(const float* x, const int64_t* positions, int64_t tokens, int64_t n_heads, int64_t head_dim,
          const float* inv_freq, float* out, cudaStream_t stream);
// rope of two tensors with the same positions (q [tokens, n_heads0, hd] and k [tokens, n_heads1,
// hd] of one layer) in one launch; each result equals rope() of that tensor.
void rope_pair(const float* x0, int64_t n_heads0, float* out0, const float* x1, int64_t n_heads1, float* out1,
               const int64_t* positions, int64_t tokens, int64_t head_dim, const float* inv_freq, cudaStream_t stream);

// out [B, R, H] = x [B, S, H] at rows [B, R]
void gather_rows(const float* x, const int64_t* rows, int64_t batch, int64_t seq, int64_t n_rows, int64_t dim,
                 float* out, cudaStream_t stream);

// out [rows] = index of the first maximum of each row of x [rows, n] (torch.argmax; NaN never
// wins; a row of only NaN gives 0). Twin: runtime::argmax.
void argmax_rows(const float* x, int64_t rows, int64_t n, int64_t* out, cudaStream_t stream);

// Sampling of one token per row of x [rows, n] with the host sampler's semantics and arithmetic
// (runtime::choose_sampled, its twin): the k largest logits (ties: lower id first) found by a radix
// select over (logit, id) keys and sorted, their probabilities exp((l - max) / temperature) in
// double, the top-p cut and the walk to r[row] * total in the host's sequential order. k =
// min(top_k or n, n) <= kMaxSampleTopK; r [rows] on the device.
constexpr int64_t kMaxSampleTopK = 1024;
void sample_rows(const float* x, int64_t rows, int64_t n, double temperature, int64_t k, double top_p, const double* r,
                 int64_t* out, cudaStream_t stream);

// Keeps the stream busy for `ns` nanoseconds (profiling: launches queue up behind it).
void gpu_spin(int64_t ns, cudaStream_t stream);

// out [n] = bf16(x [n]), round to nearest even
void f32_to_bf16(const float* x, int64_t n, uint16_t* out, cudaStream_t stream);

// out [m, n] = x [m, k] . w [n, k]^T (+ bias [n]); x/w fp32, or bf16 when `bf16`. One thread per
// output: the fallback where cuBLASLt has no algorithm, and the twin its tests compare with.
void gemm_simt(bool bf16, const void* x, const void* w, const float* bias, float* out, int64_t m, int64_t n, int64_t k,
               cudaStream_t stream);

// Decode GEMMs: out [m, n] = x [m, k] (fp32) . w [n, k]^T (bf16) (+ bias [n]) for m <= 8, fp32
// accumulation, up to three weights sharing x in one launch. Bandwidth-bound: one pass over the
// weights, no cast kernel for x. The reference twin is cpu::linear on bf16-rounded weights.
struct GemvOut {
  const uint16_t* w = nullptr;  // [n, k] bf16
  const float* bias = nullptr;  // [n] or null
  float* out = nullptr;         // [m, n]
  int64_t n = 0;
  int act = -1;                 // >= 0: a Unary applied after the bias (the GEMV epilogue)
};
constexpr int64_t kMaxGemvRows = 8;
constexpr int kMaxGemvOuts = 3;
void gemv_bf16(const float* x, int64_t m, int64_t k, const GemvOut* outs, int n_outs, cudaStream_t stream);
// The gated MLP's two GEMVs and act(gate) * up in one launch, for m <= kMaxGluRows (on an H200,
// llama-1b's 2 x 5632 x 2048: 21.8 -> 18.1 us per layer at m = 1, but 31.4 -> 37.6 us at m = 8,
// where two GEMVs plus unary_mul stay faster): out [m, n] = act(x . gate.w^T +
// gate.bias) * (x . up.w^T + up.bias), each dot product accumulated exactly as gemv_bf16 does
// (equal to gemv_bf16 of both followed by unary_mul). gate.n == up.n; gate.out, up.out and the
// act fields are ignored.
constexpr int64_t kMaxGluRows = 2;
void gemv_bf16_glu(const float* x, int64_t m, int64_t k, const GemvOut& gate, const GemvOut& up, Unary act,
                   float* out, cudaStream_t stream);

// One step of paged attention. Pools are [n_blocks, block_size, n_kv_heads, head_dim] fp32.
struct PagedAttention {
  float* k_pool = nullptr;
  float* v_pool = nullptr;
  const int32_t* block_tables = nullptr;  // [batch, max_blocks]
  int64_t max_blocks = 0;
  const int32_t* past_len = nullptr;      // [batch]
  const uint8_t* key_valid = nullptr;     // [batch, key_valid_stride]: 0 for padding keys
  int64_t key_valid_stride = 0;
  int64_t batch = 0, seq = 0;
  int64_t n_heads = 0, n_kv_heads = 0, head_dim = 0, block_size = 0;
  bool causal = true;
  float scale = 1.0f;
  int64_t window = 0;                     // > 0: a query sees only the last `window` keys
  // Prefill/encoder calls may round Q, K, P and V to fp16 for tensor cores (fp32 accumulation):
  // set at levels that allow reduced precision; never for decode-sized calls.
  bool tensor_cores = false;
};

// Writes k/v [B, S, n_kv_heads, head_dim] into the pools at positions past_len .. past_len + S - 1.
void paged_kv_write(const PagedAttention& p, const float* k, const float* v, cudaStream_t stream);
// rope_pair of q [B*S, n_heads_q, hd] and k [B*S, p.n_kv_heads, hd] (positions [B*S]) with
// paged_kv_write of the rotated k and of v in the same launch: one launch per layer fewer. The
// pool contents and q_out equal rope_pair + paged_kv_write; k_out may be null (the attention
// reads k from the pool).
void rope_pair_kv_write(const float* q, int64_t n_heads_q, float* q_out, const float* k, float* k_out, const float* v,
                        const PagedAttention& p, const int64_t* positions, const float* inv_freq, cudaStream_t stream);

// q/out [B, S, n_heads, head_dim]. One warp per query row with an online softmax over its keys,
// or, for at most kSplitMaxRows rows (decode), a block of 8 warps per row splitting the keys,
// or (prefill, encoders) the tiled kernel;
// a query with no visible key gets zeros (as the CPU reference). head_dim <= kMaxHeadDim.
constexpr int64_t kMaxHeadDim = 256;
constexpr int64_t kSplitMaxRows = 4096;
// seq >= kTiledMinSeq with head_dim <= 64 (a multiple of 4): the tiled kernel (64 query rows of
// one head share K/V tiles in shared memory) instead of either of the above.
constexpr int64_t kTiledMinSeq = 32;
// With tensor_cores: seq >= kTiledMinSeq, head_dim <= 128 (a multiple of 4) use the mma kernel.
constexpr int64_t kTcMaxHeadDim = 128;
void paged_attention(const PagedAttention& p, const float* q, float* out, cudaStream_t stream);

}  // namespace kpt::cuda
