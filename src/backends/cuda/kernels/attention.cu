// Paged attention over the K/V pools: the K/V write of a step and the attention itself.
//
// paged_attention: one warp per query row (b, t, h); lane l holds head dims l, l + 32, ... of
// q and of the running output, so every K/V row read is one coalesced 32-lane access. Keys
// stream through an online softmax (running max and denominator), so nothing is materialized
// and one kernel serves prefill and decode at any context length. Consecutive warps of a block
// are consecutive heads: with GQA the heads of a group share their K/V rows through L1.
// Not yet here: split-KV for long decode contexts and a tiled (tensor-core) prefill kernel.
#include <cfloat>

#include "backends/cuda/check.h"
#include "backends/cuda/kernels/kernels.h"

namespace kpt::cuda {

namespace {

constexpr int kWarpsPerBlock = 4;

__device__ __forceinline__ int64_t slot_row(const PagedAttention& p, int64_t b, int64_t pos) {
  const int64_t block = p.block_tables[b * p.max_blocks + pos / p.block_size];
  return block * p.block_size + pos % p.block_size;
}

// One block per new token; threads over n_kv_heads * head_dim.
__global__ void kv_write_kernel(PagedAttention p, const float* __restrict__ k, const float* __restrict__ v) {
  const int64_t bt = blockIdx.x;  // b * seq + t
  const int64_t b = bt / p.seq, t = bt % p.seq;
  const int64_t row_len = p.n_kv_heads * p.head_dim;
  const int64_t dst = slot_row(p, b, p.past_len[b] + t) * row_len;
  for (int64_t i = threadIdx.x; i < row_len; i += blockDim.x) {
    p.k_pool[dst + i] = k[bt * row_len + i];
    p.v_pool[dst + i] = v[bt * row_len + i];
  }
}

template <int kPerLane>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    attention_kernel(PagedAttention p, const float* __restrict__ q, float* __restrict__ out) {
  const int64_t row = int64_t{blockIdx.x} * kWarpsPerBlock + threadIdx.x / 32;  // (b * seq + t) * n_heads + h
  const int lane = threadIdx.x % 32;
  if (row >= p.batch * p.seq * p.n_heads) return;
  const int64_t h = row % p.n_heads;
  const int64_t bt = row / p.n_heads;
  const int64_t b = bt / p.seq, t = bt % p.seq;
  const int64_t past = p.past_len[b];
  const int64_t qpos = past + t;
  const int64_t n_keys = p.causal ? qpos + 1 : past + p.seq;
  const int64_t first_key = p.window > 0 && qpos - p.window + 1 > 0 ? qpos - p.window + 1 : 0;
  const int64_t kvh = h / (p.n_heads / p.n_kv_heads);
  const int64_t hd = p.head_dim;
  const int64_t row_len = p.n_kv_heads * hd;
  const uint8_t* valid = p.key_valid + b * p.key_valid_stride;

  float qv[kPerLane], acc[kPerLane];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int64_t d = lane + 32 * i;
    qv[i] = d < hd ? q[row * hd + d] * p.scale : 0.0f;
    acc[i] = 0.0f;
  }
  float m = -FLT_MAX, l = 0.0f;
  for (int64_t j = first_key; j < n_keys; ++j) {
    if (!valid[j]) continue;  // warp-uniform branch
    const int64_t base = slot_row(p, b, j) * row_len + kvh * hd;
    float dot = 0.0f;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int64_t d = lane + 32 * i;
      if (d < hd) dot += qv[i] * p.k_pool[base + d];
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    if (dot > m) {
      const float corr = expf(m - dot);  // m = -FLT_MAX first: corr underflows to 0
      l *= corr;
#pragma unroll
      for (int i = 0; i < kPerLane; ++i) acc[i] *= corr;
      m = dot;
    }
    const float w = expf(dot - m);
    l += w;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int64_t d = lane + 32 * i;
      if (d < hd) acc[i] += w * p.v_pool[base + d];
    }
  }
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;  // no visible key: zeros, as the reference
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int64_t d = lane + 32 * i;
    if (d < hd) out[row * hd + d] = acc[i] * inv;
  }
}

}  // namespace

void paged_kv_write(const PagedAttention& p, const float* k, const float* v, cudaStream_t stream) {
  if (p.batch * p.seq == 0) return;
  kv_write_kernel<<<static_cast<unsigned>(p.batch * p.seq), 256, 0, stream>>>(p, k, v);
  KPT_CUDA_CHECK_LAUNCH();
}

void paged_attention(const PagedAttention& p, const float* q, float* out, cudaStream_t stream) {
  const int64_t rows = p.batch * p.seq * p.n_heads;
  if (rows == 0) return;
  const unsigned grid = static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
  const unsigned threads = kWarpsPerBlock * 32;
  // head_dim picks the register footprint: 64 and 128 are the common sizes.
  if (p.head_dim <= 64) {
    attention_kernel<2><<<grid, threads, 0, stream>>>(p, q, out);
  } else if (p.head_dim <= 128) {
    attention_kernel<4><<<grid, threads, 0, stream>>>(p, q, out);
  } else {
    attention_kernel<8><<<grid, threads, 0, stream>>>(p, q, out);
  }
  KPT_CUDA_CHECK_LAUNCH();
}

}  // namespace kpt::cuda
