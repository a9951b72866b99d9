// Rotary embedding, rotate-half layout, angle = float(pos) * float(inv_freq[i]) as transformers
// forms it in float32. cosf/sinf (not the __cosf intrinsics): angles reach thousands of radians.
#include "backends/cuda/check.h"
#include "backends/cuda/kernels/kernels.h"

namespace kpt::cuda {

namespace {

// One block per token; threads over (head, i < head_dim / 2).
__global__ void rope_kernel(const float* __restrict__ x, const int64_t* __restrict__ positions, int64_t n_heads,
                            int64_t head_dim, const float* __restrict__ inv_freq, float* __restrict__ out) {
  const int64_t t = blockIdx.x;
  const int64_t half = head_dim / 2;
  const float pos = static_cast<float>(positions[t]);
  for (int64_t k = threadIdx.x; k < n_heads * half; k += blockDim.x) {
    const int64_t h = k / half, i = k % half;
    float s, c;
    sincosf(pos * inv_freq[i], &s, &c);
    const float* xh = x + (t * n_heads + h) * head_dim;
    float* oh = out + (t * n_heads + h) * head_dim;
    const float a = xh[i], b = xh[i + half];
    oh[i] = a * c - b * s;
    oh[i + half] = b * c + a * s;
  }
}

}  // namespace

void rope(const float* x, const int64_t* positions, int64_t tokens, int64_t n_heads, int64_t head_dim,
          const float* inv_freq, float* out, cudaStream_t stream) {
  if (tokens == 0) return;
  rope_kernel<<<static_cast<unsigned>(tokens), 256, 0, stream>>>(x, positions, n_heads, head_dim, inv_freq, out);
  KPT_CUDA_CHECK_LAUNCH();
}

}  // namespace kpt::cuda
