// Token choice on the device: greedy decoding reads back one id per row instead of the row's
// logits (a 32,000-float row is 128 KB per token and a host-side scan).
#include <cmath>

#include "backends/cuda/check.h"
#include "backends/cuda/kernels/kernels.h"

namespace kpt::cuda {

namespace {

constexpr int kArgmaxThreads = 512;

// (value, index) with the first maximum winning ties, as torch.argmax. NaN never wins here (the
// host twin can return a NaN in first place; NaN logits are a bug upstream either way).
struct Best {
  float v;
  int64_t i;
};

__device__ __forceinline__ Best better(Best a, Best b) {
  if (b.v > a.v || (b.v == a.v && b.i < a.i)) return b;
  return a;
}

// One block per row; each thread scans a strided slice, then a warp-shuffle and shared-memory
// reduction. Rows start at arbitrary offsets (vocab sizes like 50,257), so loads are scalar.
__global__ void __launch_bounds__(kArgmaxThreads) argmax_kernel(const float* __restrict__ x, int64_t n,
                                                                int64_t* __restrict__ out) {
  const float* row = x + int64_t{blockIdx.x} * n;
  Best best{-INFINITY, n};  // index n: none yet; a row of -inf ties down to index 0
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) best = better(best, Best{row[i], i});
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    Best other{__shfl_xor_sync(0xffffffffu, best.v, o), __shfl_xor_sync(0xffffffffu, best.i, o)};
    best = better(best, other);
  }
  __shared__ Best warp_best[kArgmaxThreads / 32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_best[warp] = best;
  __syncthreads();
  if (threadIdx.x == 0) {
    Best b = warp_best[0];
    for (int w = 1; w < kArgmaxThreads / 32; ++w) b = better(b, warp_best[w]);
    // Only NaN in the row: std::max_element returns the first element.
    out[blockIdx.x] = b.i < n ? b.i : 0;
  }
}

}  // namespace

void argmax_rows(const float* x, int64_t rows, int64_t n, int64_t* out, cudaStream_t stream) {
  if (rows == 0) return;
  argmax_kernel<<<static_cast<unsigned>(rows), kArgmaxThreads, 0, stream>>>(x, n, out);
  KPT_CUDA_CHECK_LAUNCH();
}

}  // namespace kpt::cuda
