// Decode-shaped GEMM (m <= 8 rows) with bf16 weights: a bandwidth-bound GEMV that reads the fp32
// activations directly (no separate fp32 -> bf16 cast kernel), accumulates in fp32 and adds the
// bias in the same pass. Several GEMMs that share one input (q/k/v, gate/up) run as one launch:
// blockIdx.y picks the weight. cuBLASLt's heuristic for m = 1 took ~18 us for a 2048x2048 bf16
// weight (8 MB: ~2 us at the copy ceiling) on an H200 (docs/cuda.md).
//
// Layout: each warp owns kRows consecutive output features and streams their weight rows with
// 16-byte loads (8 bf16 per lane, 256 per warp step), multiplying by all m activation rows, which
// come from L1/L2 (the same x serves every warp of the block). kRows > 1 reuses each x load for
// several weight rows, which matters at m = 8 where x traffic would otherwise be 8x the weights'.
// The reduction order of one output depends only on k, never on m: batched == single exactly.
// kGlu: the gated MLP's gate and up GEMVs in one pass (each warp streams its rows of both weights)
// with act(gate) * up as the epilogue: one launch and the two [m, n] intermediates fewer per layer.
#include <cuda_bf16.h>

#include "backends/cuda/check.h"
#include "kpt/status.h"
#include "backends/cuda/kernels/kernels.h"

namespace kpt::cuda {

namespace {

constexpr int kWarps = 4;  // small blocks: a 2048-row GEMV at m = 8 still gets 128 of them

struct GemvArgs {
  GemvOut outs[kMaxGemvOuts];
};

__device__ __forceinline__ float bf16_lo(uint32_t v) { return __uint_as_float(v << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t v) { return __uint_as_float(v & 0xffff0000u); }

// The same formulas as the unary kernels (elementwise.cu).
__device__ __forceinline__ float activate(int act, float x) {
  switch (act) {
    case static_cast<int>(Unary::kGeluErf): return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));
    case static_cast<int>(Unary::kGeluTanh):
      return 0.5f * x * (1.0f + tanhf(0.79788456080286535588f * (x + 0.044715f * x * x * x)));
    case static_cast<int>(Unary::kSilu): return x / (1.0f + expf(-x));
    case static_cast<int>(Unary::kRelu): return x > 0.0f ? x : 0.0f;
    default: return x;
  }
}

template <int kM, int kRows, bool kVec, bool kGlu>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_kernel(const float* __restrict__ x, int64_t k, GemvArgs args, float* __restrict__ glu_out) {
  // Constant indices only: a run-time index into the parameter array copies it to local memory.
  static_assert(kMaxGemvOuts == 3, "the selection below names every output");
  const GemvOut g = kGlu || blockIdx.y == 0 ? args.outs[0] : (blockIdx.y == 1 ? args.outs[1] : args.outs[2]);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t n0 = (int64_t{blockIdx.x} * kWarps + warp) * kRows;
  if (n0 >= g.n) return;  // whole warps only; no block barrier in this kernel
  // Weight rows this warp streams: kRows of outs[0] (and, kGlu, the same rows of outs[1] after them).
  constexpr int kW = kGlu ? 2 * kRows : kRows;
  float acc[kW][kM];
#pragma unroll
  for (int r = 0; r < kW; ++r) {
#pragma unroll
    for (int mi = 0; mi < kM; ++mi) acc[r][mi] = 0.0f;
  }
  // Rows past n reuse the last valid row (loads stay in bounds); their results are dropped.
  const uint16_t* wr[kW];
#pragma unroll
  for (int r = 0; r < kW; ++r) {
    const int64_t n = n0 + r % kRows < g.n ? n0 + r % kRows : g.n - 1;
    wr[r] = (r < kRows ? g.w : args.outs[1].w) + n * k;
  }
  int64_t k_done = 0;
  if (kVec) {
    // k % 8 == 0: every weight row and x row starts 16-byte aligned.
    const int64_t k_vec = k;
    // More weight bytes in flight per warp where registers allow (a 2048-row GEMV has only one
    // block per SM: in-flight bytes, not instructions, set its bandwidth).
    constexpr int kUnroll = kM <= 2 ? 4 : 2;
#pragma unroll kUnroll
    for (int64_t k0 = int64_t{lane} * 8; k0 < k_vec; k0 += 256) {
      uint4 wv[kW];
#pragma unroll
      for (int r = 0; r < kW; ++r) wv[r] = __ldg(reinterpret_cast<const uint4*>(wr[r] + k0));
#pragma unroll
      for (int mi = 0; mi < kM; ++mi) {
        const float4 xa = __ldg(reinterpret_cast<const float4*>(x + mi * k + k0));
        const float4 xb = __ldg(reinterpret_cast<const float4*>(x + mi * k + k0 + 4));
#pragma unroll
        for (int r = 0; r < kW; ++r) {
          float a = acc[r][mi];
          a = fmaf(xa.x, bf16_lo(wv[r].x), a);
          a = fmaf(xa.y, bf16_hi(wv[r].x), a);
          a = fmaf(xa.z, bf16_lo(wv[r].y), a);
          a = fmaf(xa.w, bf16_hi(wv[r].y), a);
          a = fmaf(xb.x, bf16_lo(wv[r].z), a);
          a = fmaf(xb.y, bf16_hi(wv[r].z), a);
          a = fmaf(xb.z, bf16_lo(wv[r].w), a);
          a = fmaf(xb.w, bf16_hi(wv[r].w), a);
          acc[r][mi] = a;
        }
      }
    }
    k_done = k;
  }
  for (int64_t kk = k_done + lane; kk < k; kk += 32) {  // any k: one element per lane
#pragma unroll
    for (int r = 0; r < kW; ++r) {
      const float wf = __uint_as_float(static_cast<uint32_t>(wr[r][kk]) << 16);
#pragma unroll
      for (int mi = 0; mi < kM; ++mi) acc[r][mi] = fmaf(x[mi * k + kk], wf, acc[r][mi]);
    }
  }
#pragma unroll
  for (int r = 0; r < kW; ++r) {
#pragma unroll
    for (int mi = 0; mi < kM; ++mi) {
      float v = acc[r][mi];
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
      acc[r][mi] = v;
    }
  }
  // Lane r * kM + mi writes one output (kRows * kM <= 32).
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
#pragma unroll
    for (int mi = 0; mi < kM; ++mi) {
      if (lane == r * kM + mi && n0 + r < g.n) {
        const int64_t n = n0 + r;
        const float v = acc[r][mi] + (g.bias != nullptr ? g.bias[n] : 0.0f);
        if constexpr (kGlu) {
          const GemvOut& u = args.outs[1];
          const float up = acc[kRows + r][mi] + (u.bias != nullptr ? u.bias[n] : 0.0f);
          glu_out[mi * g.n + n] = activate(g.act, v) * up;
        } else {
          g.out[mi * g.n + n] = g.act >= 0 ? activate(g.act, v) : v;
        }
      }
    }
  }
}

template <int kM, int kRows, bool kGlu = false>
void launch(const float* x, int64_t k, const GemvArgs& args, int n_outs, int64_t max_n, cudaStream_t stream,
            float* glu_out = nullptr) {
  const int64_t per_block = int64_t{kWarps} * kRows;
  const dim3 grid(static_cast<unsigned>((max_n + per_block - 1) / per_block), static_cast<unsigned>(n_outs));
  if (k % 8 == 0) {
    gemv_kernel<kM, kRows, true, kGlu><<<grid, kWarps * 32, 0, stream>>>(x, k, args, glu_out);
  } else {
    gemv_kernel<kM, kRows, false, kGlu><<<grid, kWarps * 32, 0, stream>>>(x, k, args, glu_out);
  }
}

}  // namespace

void gemv_bf16(const float* x, int64_t m, int64_t k, const GemvOut* outs, int n_outs, cudaStream_t stream) {
  KPT_CHECK(m >= 1 && m <= kMaxGemvRows && k >= 1, "gemv_bf16: m must be in 1..8 and k >= 1");
  KPT_CHECK(n_outs >= 1 && n_outs <= kMaxGemvOuts, "gemv_bf16: 1..3 outputs");
  GemvArgs args{};
  int64_t max_n = 0;
  for (int i = 0; i < n_outs; ++i) {
    args.outs[i] = outs[i];
    max_n = outs[i].n > max_n ? outs[i].n : max_n;
  }
  if (max_n == 0) return;
  switch (m) {
    case 1: launch<1, 2>(x, k, args, n_outs, max_n, stream); break;
    case 2: launch<2, 2>(x, k, args, n_outs, max_n, stream); break;
    case 3: launch<3, 2>(x, k, args, n_outs, max_n, stream); break;
    case 4: launch<4, 4>(x, k, args, n_outs, max_n, stream); break;
    case 5: launch<5, 4>(x, k, args, n_outs, max_n, stream); break;
    case 6: launch<6, 4>(x, k, args, n_outs, max_n, stream); break;
    case 7: launch<7, 4>(x, k, args, n_outs, max_n, stream); break;
    default: launch<8, 4>(x, k, args, n_outs, max_n, stream); break;
  }
  KPT_CUDA_CHECK_LAUNCH();
}

void gemv_bf16_glu(const float* x, int64_t m, int64_t k, const GemvOut& gate, const GemvOut& up, Unary act,
                   float* out, cudaStream_t stream) {
  KPT_CHECK(m >= 1 && m <= kMaxGluRows && k >= 1, "gemv_bf16_glu: m must be in 1..2 and k >= 1");
  KPT_CHECK(gate.n == up.n, "gemv_bf16_glu: gate and up must have the same number of outputs");
  if (gate.n == 0) return;
  GemvArgs args{};
  args.outs[0] = gate;
  args.outs[0].act = static_cast<int>(act);
  args.outs[1] = up;
  // Two weights per warp: half the rows per warp of gemv_bf16 at the same register budget.
  switch (m) {
    case 1: launch<1, 1, true>(x, k, args, 1, gate.n, stream, out); break;
    default: launch<2, 1, true>(x, k, args, 1, gate.n, stream, out); break;
  }
  KPT_CUDA_CHECK_LAUNCH();
}

}  // namespace kpt::cuda
