// Rotary embedding, rotate-half layout, angle = float(pos) * float(inv_freq[i]) as transformers
// forms it in float32. cosf/sinf (not the __cosf intrinsics): angles reach thousands of radians.
#include "backends/cuda/check.h"
#include "backends/cuda/kernels/kernels.h"

namespace kpt::cuda {

namespace {

struct RopeArgs {
  const float* x[2];
  float* out[2];
  int64_t n_heads[2];
};

// One block per (token, tensor); threads over (head, i < head_dim / 2). Two tensors (q and k of
// one layer, same positions) share a launch through blockIdx.y.
__global__ void rope_kernel(RopeArgs args, const int64_t* __restrict__ positions, int64_t head_dim,
                            const float* __restrict__ inv_freq) {
  // Constant indices only: a run-time index into the parameter array copies it to local memory.
  const bool second = blockIdx.y == 1;
  const float* __restrict__ x = second ? args.x[1] : args.x[0];
  float* __restrict__ out = second ? args.out[1] : args.out[0];
  const int64_t n_heads = second ? args.n_heads[1] : args.n_heads[0];
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
  const RopeArgs args{{x, nullptr}, {out, nullptr}, {n_heads, 0}};
  rope_kernel<<<dim3(static_cast<unsigned>(tokens), 1), 256, 0, stream>>>(args, positions, head_dim, inv_freq);
  KPT_CUDA_CHECK_LAUNCH();
}

void rope_pair(const float* x0, int64_t n_heads0, float* out0, const float* x1, int64_t n_heads1, float* out1,
               const int64_t* positions, int64_t tokens, int64_t head_dim, const float* inv_freq, cudaStream_t stream) {
  if (tokens == 0) return;
  const RopeArgs args{{x0, x1}, {out0, out1}, {n_heads0, n_heads1}};
  rope_kernel<<<dim3(static_cast<unsigned>(tokens), 2), 256, 0, stream>>>(args, positions, head_dim, inv_freq);
  KPT_CUDA_CHECK_LAUNCH();
}

}  // namespace kpt::cuda
