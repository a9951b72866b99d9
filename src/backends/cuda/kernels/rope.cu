// Rotary embedding, rotate-half layout, angle = float(pos) * float(inv_freq[i]) as transformers
// forms it in float32. cosf/sinf (not the __cosf intrinsics): angles reach thousands of radians.
#include "backends/cuda/check.h"
#include "backends/cuda/kernels/kernels.h"
#include "backends/cuda/kernels/paged_slot.cuh"

namespace kpt::cuda {

namespace {

struct RopeArgs {
  const float* x[2];
  float* out[2];
  int64_t n_heads[2];
};

// The layer's K/V write fused in (rope_pair_kv_write): the second tensor's rotated rows also go to
// the K pool, and blockIdx.y == 2 copies v's rows to the V pool.
struct KvArgs {
  PagedAttention p;
  const float* v = nullptr;
};

// One block per (token, tensor); threads over (head, i < head_dim / 2). Two tensors (q and k of
// one layer, same positions) share a launch through blockIdx.y.
template <bool kKv>
__global__ void rope_kernel(RopeArgs args, const int64_t* __restrict__ positions, int64_t head_dim,
                            const float* __restrict__ inv_freq, KvArgs kv) {
  const int64_t t = blockIdx.x;
  int64_t slot = 0;  // kKv: the token's pool row offset, as paged_kv_write computes it
  if constexpr (kKv) {
    const int64_t b = t / kv.p.seq;
    slot = slot_row(kv.p, b, kv.p.past_len[b] + t % kv.p.seq) * kv.p.n_kv_heads * kv.p.head_dim;
    if (blockIdx.y == 2) {
      const int64_t row_len = kv.p.n_kv_heads * kv.p.head_dim;
      for (int64_t i = threadIdx.x; i < row_len; i += blockDim.x) kv.p.v_pool[slot + i] = kv.v[t * row_len + i];
      return;
    }
  }
  // Constant indices only: a run-time index into the parameter array copies it to local memory.
  const bool second = blockIdx.y == 1;
  const float* __restrict__ x = second ? args.x[1] : args.x[0];
  float* __restrict__ out = second ? args.out[1] : args.out[0];
  const int64_t n_heads = second ? args.n_heads[1] : args.n_heads[0];
  const int64_t half = head_dim / 2;
  const float pos = static_cast<float>(positions[t]);
  for (int64_t k = threadIdx.x; k < n_heads * half; k += blockDim.x) {
    const int64_t h = k / half, i = k % half;
    float s, c;
    sincosf(pos * inv_freq[i], &s, &c);
    const float* xh = x + (t * n_heads + h) * head_dim;
    const float a = xh[i], b = xh[i + half];
    const float r0 = a * c - b * s, r1 = b * c + a * s;
    if (out != nullptr) {
      float* oh = out + (t * n_heads + h) * head_dim;
      oh[i] = r0;
      oh[i + half] = r1;
    }
    if (kKv && second) {
      float* kh = kv.p.k_pool + slot + h * head_dim;
      kh[i] = r0;
      kh[i + half] = r1;
    }
  }
}

}  // namespace

void rope(const float* x, const int64_t* positions, int64_t tokens, int64_t n_heads, int64_t head_dim,
          const float* inv_freq, float* out, cudaStream_t stream) {
  if (tokens == 0) return;
  const RopeArgs args{{x, nullptr}, {out, nullptr}, {n_heads, 0}};
  rope_kernel<false><<<dim3(static_cast<unsigned>(tokens), 1), 256, 0, stream>>>(args, positions, head_dim, inv_freq, {});
  KPT_CUDA_CHECK_LAUNCH();
}

void rope_pair(const float* x0, int64_t n_heads0, float* out0, const float* x1, int64_t n_heads1, float* out1,
               const int64_t* positions, int64_t tokens, int64_t head_dim, const float* inv_freq, cudaStream_t stream) {
  if (tokens == 0) return;
  const RopeArgs args{{x0, x1}, {out0, out1}, {n_heads0, n_heads1}};
  rope_kernel<false><<<dim3(static_cast<unsigned>(tokens), 2), 256, 0, stream>>>(args, positions, head_dim, inv_freq, {});
  KPT_CUDA_CHECK_LAUNCH();
}

void rope_pair_kv_write(const float* q, int64_t n_heads_q, float* q_out, const float* k, float* k_out, const float* v,
                        const PagedAttention& p, const int64_t* positions, const float* inv_freq, cudaStream_t stream) {
  const int64_t tokens = p.batch * p.seq;
  if (tokens == 0) return;
  const RopeArgs args{{q, k}, {q_out, k_out}, {n_heads_q, p.n_kv_heads}};
  KvArgs kv;
  kv.p = p;
  kv.v = v;
  rope_kernel<true><<<dim3(static_cast<unsigned>(tokens), 3), 256, 0, stream>>>(args, positions, p.head_dim, inv_freq, kv);
  KPT_CUDA_CHECK_LAUNCH();
}

}  // namespace kpt::cuda
