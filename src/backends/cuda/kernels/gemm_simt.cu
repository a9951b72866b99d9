// A plain SIMT GEMM: one thread per output, fp32 accumulation over fp32 or bf16 operands. It
// serves shapes cuBLASLt has no algorithm for, and is the GPU twin the cuBLASLt path is tested
// against. Not fast: used only where correctness is all that is asked.
#include <cuda_bf16.h>

#include "backends/cuda/check.h"
#include "backends/cuda/kernels/kernels.h"

namespace kpt::cuda {

namespace {

__device__ __forceinline__ float load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }

template <typename T>
__global__ void gemm_simt_kernel(const T* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,
                                 float* __restrict__ out, int64_t m, int64_t n, int64_t k) {
  const int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (idx >= m * n) return;
  const int64_t r = idx / n, c = idx % n;
  float acc = 0.0f;
  for (int64_t i = 0; i < k; ++i) acc += load(x, r * k + i) * load(w, c * k + i);
  out[idx] = acc + (bias != nullptr ? bias[c] : 0.0f);
}

}  // namespace

void gemm_simt(bool bf16, const void* x, const void* w, const float* bias, float* out, int64_t m, int64_t n, int64_t k,
               cudaStream_t stream) {
  if (m * n == 0) return;
  const unsigned grid = static_cast<unsigned>((m * n + 255) / 256);
  if (bf16) {
    gemm_simt_kernel<<<grid, 256, 0, stream>>>(static_cast<const __nv_bfloat16*>(x),
                                               static_cast<const __nv_bfloat16*>(w), bias, out, m, n, k);
  } else {
    gemm_simt_kernel<<<grid, 256, 0, stream>>>(static_cast<const float*>(x), static_cast<const float*>(w), bias, out,
                                               m, n, k);
  }
  KPT_CUDA_CHECK_LAUNCH();
}

}  // namespace kpt::cuda
