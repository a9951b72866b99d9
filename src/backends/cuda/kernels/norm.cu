// LayerNorm and RMSNorm, fp32 statistics. The add_* variants fuse the residual add in front (sum =
// a + b is written, as the residual stream needs it, and normalized in the same launch): one
// launch and one pass fewer per norm. Every variant can also write its result rounded to bf16
// (out16), the A operand of the GEMMs that read it: the cast kernel in front of those GEMMs goes.
//
// Many rows (>= kWarpMinRows) of up to kWarpMaxDim elements (a multiple of 4) take one warp each:
// 16-byte loads, the row in registers, warp-shuffle reductions only (no block barrier). On an
// H200, add+LayerNorm of BERT-base at batch 32 x 128 (4096 x 768, ~38 MB moved: ~9 us at the copy
// ceiling) went from 34 to 15 us per launch; but with few rows one warp per row leaves the GPU
// idle (decode, 1 x 2048: 7.2 -> 12.5 us; prefill 512 x 2048: 8.7 -> 11.2 us), so fewer rows keep
// the block-per-row kernels, as do longer rows and odd sizes. A row's result depends only on that
// row and the kernel its row count picks.
#include <cuda_bf16.h>

#include "backends/cuda/check.h"
#include "backends/cuda/kernels/kernels.h"
#include "backends/cuda/kernels/vec4_store.cuh"

namespace kpt::cuda {

namespace {

constexpr int kThreads = 256;

// Sum over the block; every thread gets the result. `scratch` holds one float per warp.
__device__ float block_sum(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) total += scratch[w];
  return total;
}

// Writes one result element: fp32 and/or bf16, whichever is asked for.
__device__ __forceinline__ void put(float* out, __nv_bfloat16* out16, int64_t i, float y) {
  if (out != nullptr) out[i] = y;
  if (out16 != nullptr) out16[i] = __float2bfloat16_rn(y);
}

__global__ void layer_norm_kernel(const float* __restrict__ x, const float* __restrict__ gamma,
                                  const float* __restrict__ beta, int64_t dim, float eps, float* __restrict__ out,
                                  __nv_bfloat16* __restrict__ out16) {
  __shared__ float scratch[kThreads / 32];
  const int64_t off = int64_t{blockIdx.x} * dim;
  const float* xr = x + off;
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) s += xr[i];
  const float mean = block_sum(s, scratch) / static_cast<float>(dim);
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const float d = xr[i] - mean;
    ss += d * d;
  }
  const float inv = rsqrtf(block_sum(ss, scratch) / static_cast<float>(dim) + eps);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) put(out, out16, off + i, (xr[i] - mean) * inv * gamma[i] + beta[i]);
}

__global__ void rms_norm_kernel(const float* __restrict__ x, const float* __restrict__ gamma, int64_t dim, float eps,
                                float* __restrict__ out, __nv_bfloat16* __restrict__ out16) {
  __shared__ float scratch[kThreads / 32];
  const int64_t off = int64_t{blockIdx.x} * dim;
  const float* xr = x + off;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
  const float inv = rsqrtf(block_sum(ss, scratch) / static_cast<float>(dim) + eps);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) put(out, out16, off + i, gamma[i] * (xr[i] * inv));
}

// Rows up to kCachedDim keep their sum in registers (kPer per thread, compile-time indices);
// longer rows re-read it from `sum` (each thread only the elements it wrote: program order).
// The register path saves a global round trip on the single-row decode norms (~8 us each, with
// the re-read, on an H200).
constexpr int kPer = 16;
constexpr int64_t kCachedDim = int64_t{kPer} * kThreads;

template <bool kCached>
__global__ void add_layer_norm_kernel(const float* __restrict__ a, const float* __restrict__ b,
                                      const float* __restrict__ gamma, const float* __restrict__ beta, int64_t dim,
                                      float eps, float* __restrict__ sum, float* __restrict__ out,
                                      __nv_bfloat16* __restrict__ out16) {
  __shared__ float scratch[kThreads / 32];
  const int64_t off = int64_t{blockIdx.x} * dim;
  float v[kCached ? kPer : 1];
  float s = 0.0f;
  if constexpr (kCached) {
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int64_t i = threadIdx.x + int64_t{e} * kThreads;
      v[e] = i < dim ? a[off + i] + b[off + i] : 0.0f;
      if (i < dim) sum[off + i] = v[e];
      s += v[e];
    }
  } else {
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
      const float x = a[off + i] + b[off + i];
      sum[off + i] = x;
      s += x;
    }
  }
  const float mean = block_sum(s, scratch) / static_cast<float>(dim);
  float ss = 0.0f;
  if constexpr (kCached) {
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const float d = v[e] - mean;
      ss += threadIdx.x + int64_t{e} * kThreads < dim ? d * d : 0.0f;
    }
  } else {
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
      const float d = sum[off + i] - mean;
      ss += d * d;
    }
  }
  const float inv = rsqrtf(block_sum(ss, scratch) / static_cast<float>(dim) + eps);
  if constexpr (kCached) {
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int64_t i = threadIdx.x + int64_t{e} * kThreads;
      if (i < dim) put(out, out16, off + i, (v[e] - mean) * inv * gamma[i] + beta[i]);
    }
  } else {
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) put(out, out16, off + i, (sum[off + i] - mean) * inv * gamma[i] + beta[i]);
  }
}

template <bool kCached>
__global__ void add_rms_norm_kernel(const float* __restrict__ a, const float* __restrict__ b,
                                    const float* __restrict__ gamma, int64_t dim, float eps, float* __restrict__ sum,
                                    float* __restrict__ out, __nv_bfloat16* __restrict__ out16) {
  __shared__ float scratch[kThreads / 32];
  const int64_t off = int64_t{blockIdx.x} * dim;
  float v[kCached ? kPer : 1];
  float ss = 0.0f;
  if constexpr (kCached) {
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int64_t i = threadIdx.x + int64_t{e} * kThreads;
      v[e] = i < dim ? a[off + i] + b[off + i] : 0.0f;
      if (i < dim) sum[off + i] = v[e];
      ss += v[e] * v[e];
    }
  } else {
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
      const float x = a[off + i] + b[off + i];
      sum[off + i] = x;
      ss += x * x;
    }
  }
  const float inv = rsqrtf(block_sum(ss, scratch) / static_cast<float>(dim) + eps);
  if constexpr (kCached) {
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int64_t i = threadIdx.x + int64_t{e} * kThreads;
      if (i < dim) put(out, out16, off + i, gamma[i] * (v[e] * inv));
    }
  } else {
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) put(out, out16, off + i, gamma[i] * (sum[off + i] * inv));
  }
}

// One warp per row (see the top of the file): kV float4 per lane, dim <= 128 * kV, dim % 4 == 0.
constexpr int kNormWarps = 4;
constexpr int64_t kWarpMaxDim = 2048;
constexpr int64_t kWarpMinRows = 2048;

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <int kV, bool kLayer, bool kAdd>
__global__ void __launch_bounds__(kNormWarps * 32)
    warp_norm_kernel(const float* __restrict__ a, const float* __restrict__ b, const float* __restrict__ gamma,
                     const float* __restrict__ beta, int64_t rows, int64_t dim, float eps, float* __restrict__ sum,
                     float* __restrict__ out, __nv_bfloat16* __restrict__ out16) {
  const int lane = threadIdx.x % 32;
  const int64_t row = int64_t{blockIdx.x} * kNormWarps + threadIdx.x / 32;
  if (row >= rows) return;
  const int64_t off = row * dim;
  const int n4 = static_cast<int>(dim / 4);
  float4 v[kV];
  float s = 0.0f;
#pragma unroll
  for (int c = 0; c < kV; ++c) {
    const int i4 = lane + 32 * c;
    v[c] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (i4 < n4) {
      v[c] = reinterpret_cast<const float4*>(a + off)[i4];
      if constexpr (kAdd) {
        const float4 bv = reinterpret_cast<const float4*>(b + off)[i4];
        v[c] = make_float4(v[c].x + bv.x, v[c].y + bv.y, v[c].z + bv.z, v[c].w + bv.w);
        reinterpret_cast<float4*>(sum + off)[i4] = v[c];
      }
      s += kLayer ? (v[c].x + v[c].y) + (v[c].z + v[c].w)
                  : (v[c].x * v[c].x + v[c].y * v[c].y) + (v[c].z * v[c].z + v[c].w * v[c].w);
    }
  }
  const float inv_dim = 1.0f / static_cast<float>(dim);
  float mean = 0.0f, inv = 0.0f;
  if constexpr (kLayer) {
    mean = warp_sum(s) * inv_dim;
    float ss = 0.0f;
#pragma unroll
    for (int c = 0; c < kV; ++c) {
      if (lane + 32 * c < n4) {
        const float dx = v[c].x - mean, dy = v[c].y - mean, dz = v[c].z - mean, dw = v[c].w - mean;
        ss += (dx * dx + dy * dy) + (dz * dz + dw * dw);
      }
    }
    inv = rsqrtf(warp_sum(ss) * inv_dim + eps);
  } else {
    inv = rsqrtf(warp_sum(s) * inv_dim + eps);
  }
#pragma unroll
  for (int c = 0; c < kV; ++c) {
    const int i4 = lane + 32 * c;
    if (i4 >= n4) continue;
    const float4 g = reinterpret_cast<const float4*>(gamma)[i4];
    float4 y;
    if constexpr (kLayer) {
      const float4 be = reinterpret_cast<const float4*>(beta)[i4];
      y = make_float4((v[c].x - mean) * inv * g.x + be.x, (v[c].y - mean) * inv * g.y + be.y,
                      (v[c].z - mean) * inv * g.z + be.z, (v[c].w - mean) * inv * g.w + be.w);
    } else {
      y = make_float4(g.x * (v[c].x * inv), g.y * (v[c].y * inv), g.z * (v[c].z * inv), g.w * (v[c].w * inv));
    }
    store4(out != nullptr ? out + off : nullptr, out16 != nullptr ? out16 + off : nullptr, i4, y);
  }
}

// The warp kernel where the row fits and every pointer allows vector access; false: not launched.
template <bool kLayer, bool kAdd>
bool launch_warp_norm(const float* a, const float* b, const float* gamma, const float* beta, int64_t rows,
                      int64_t dim, float eps, float* sum, float* out, uint16_t* out16, cudaStream_t stream) {
  if (dim % 4 != 0 || dim > kWarpMaxDim || rows < kWarpMinRows) return false;
  for (const void* p : {static_cast<const void*>(a), static_cast<const void*>(b), static_cast<const void*>(gamma),
                        static_cast<const void*>(beta), static_cast<const void*>(sum), static_cast<const void*>(out)}) {
    if (!aligned_to(p, 16)) return false;
  }
  if (!aligned_to(out16, 8)) return false;
  auto* o16 = reinterpret_cast<__nv_bfloat16*>(out16);
  const unsigned grid = static_cast<unsigned>((rows + kNormWarps - 1) / kNormWarps);
  const int v = static_cast<int>((dim / 4 + 31) / 32);  // float4 per lane
  if (v <= 2) {
    warp_norm_kernel<2, kLayer, kAdd><<<grid, kNormWarps * 32, 0, stream>>>(a, b, gamma, beta, rows, dim, eps, sum, out, o16);
  } else if (v <= 4) {
    warp_norm_kernel<4, kLayer, kAdd><<<grid, kNormWarps * 32, 0, stream>>>(a, b, gamma, beta, rows, dim, eps, sum, out, o16);
  } else if (v <= 8) {
    warp_norm_kernel<8, kLayer, kAdd><<<grid, kNormWarps * 32, 0, stream>>>(a, b, gamma, beta, rows, dim, eps, sum, out, o16);
  } else {
    warp_norm_kernel<16, kLayer, kAdd><<<grid, kNormWarps * 32, 0, stream>>>(a, b, gamma, beta, rows, dim, eps, sum, out, o16);
  }
  KPT_CUDA_CHECK_LAUNCH();
  return true;
}

}  // namespace

void layer_norm(const float* x, const float* gamma, const float* beta, int64_t rows, int64_t dim, float eps,
                float* out, cudaStream_t stream, uint16_t* out16) {
  if (rows == 0) return;
  if (launch_warp_norm<true, false>(x, nullptr, gamma, beta, rows, dim, eps, nullptr, out, out16, stream)) return;
  layer_norm_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, gamma, beta, dim, eps, out,
                                                                          reinterpret_cast<__nv_bfloat16*>(out16));
  KPT_CUDA_CHECK_LAUNCH();
}

void rms_norm(const float* x, const float* gamma, int64_t rows, int64_t dim, float eps, float* out,
              cudaStream_t stream, uint16_t* out16) {
  if (rows == 0) return;
  if (launch_warp_norm<false, false>(x, nullptr, gamma, nullptr, rows, dim, eps, nullptr, out, out16, stream)) return;
  rms_norm_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, gamma, dim, eps, out,
                                                                        reinterpret_cast<__nv_bfloat16*>(out16));
  KPT_CUDA_CHECK_LAUNCH();
}

void add_layer_norm(const float* a, const float* b, const float* gamma, const float* beta, int64_t rows, int64_t dim,
                    float eps, float* sum, float* out, cudaStream_t stream, uint16_t* out16) {
  if (rows == 0) return;
  if (launch_warp_norm<true, true>(a, b, gamma, beta, rows, dim, eps, sum, out, out16, stream)) return;
  auto* o16 = reinterpret_cast<__nv_bfloat16*>(out16);
  if (dim <= kCachedDim) {
    add_layer_norm_kernel<true><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(a, b, gamma, beta, dim, eps, sum, out, o16);
  } else {
    add_layer_norm_kernel<false><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(a, b, gamma, beta, dim, eps, sum, out, o16);
  }
  KPT_CUDA_CHECK_LAUNCH();
}

void add_rms_norm(const float* a, const float* b, const float* gamma, int64_t rows, int64_t dim, float eps, float* sum,
                  float* out, cudaStream_t stream, uint16_t* out16) {
  if (rows == 0) return;
  if (launch_warp_norm<false, true>(a, b, gamma, nullptr, rows, dim, eps, sum, out, out16, stream)) return;
  auto* o16 = reinterpret_cast<__nv_bfloat16*>(out16);
  if (dim <= kCachedDim) {
    add_rms_norm_kernel<true><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(a, b, gamma, dim, eps, sum, out, o16);
  } else {
    add_rms_norm_kernel<false><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(a, b, gamma, dim, eps, sum, out, o16);
  }
  KPT_CUDA_CHECK_LAUNCH();
}

}  // namespace kpt::cuda
