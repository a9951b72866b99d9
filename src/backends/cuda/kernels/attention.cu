// Paged attention over the K/V pools: the K/V write of a step and the attention itself.
//
// paged_attention: one warp per query row (b, t, h); keys stream through an online softmax
// (running max and denominator) in chunks of 32, so nothing is materialized and one kernel
// serves prefill and decode at any context length. Consecutive warps of a block
// are consecutive heads: with GQA the heads of a group share their K/V rows through L1.
// Not yet here: split-KV for long decode contexts and a tiled (tensor-core) prefill kernel.
#include <cmath>

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

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Keys go in chunks of 32, one key per lane for the scores (each lane reads its own K row with
// 16-byte loads, so a chunk costs one memory latency instead of 32 dependent ones), then the
// chunk's max and sum are two warp reductions, and the V rows are accumulated with lanes over
// head_dim (coalesced). The first version (one key at a time, a shuffle reduction per key) was
// latency-bound: ~1,000 cycles per key, 4.8 ms per decode step on an H200 (docs/cuda.md).
template <int kPerLane>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    attention_kernel(PagedAttention p, const float* __restrict__ q, float* __restrict__ out) {
  __shared__ __align__(16) float q_smem[kWarpsPerBlock][32 * kPerLane];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = int64_t{blockIdx.x} * kWarpsPerBlock + warp;  // (b * seq + t) * n_heads + h
  if (row >= p.batch * p.seq * p.n_heads) return;  // whole warps only: no block barrier below
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
  const bool vec4 = hd % 4 == 0;  // then every K row offset is a multiple of 4 floats

  float* qs = q_smem[warp];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int64_t d = lane + 32 * i;
    qs[d] = d < hd ? q[row * hd + d] * p.scale : 0.0f;
  }
  __syncwarp();

  float acc[kPerLane];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) acc[i] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  for (int64_t j0 = first_key; j0 < n_keys; j0 += 32) {
    const int64_t j = j0 + lane;
    float s = -INFINITY;
    int64_t base = 0;
    if (j < n_keys && valid[j]) {
      base = slot_row(p, b, j) * row_len + kvh * hd;
      const float* kr = p.k_pool + base;
      float dot = 0.0f;
      if (vec4) {
        const float4* k4 = reinterpret_cast<const float4*>(kr);
        const float4* q4 = reinterpret_cast<const float4*>(qs);
        for (int64_t d = 0; d < hd / 4; ++d) {
          const float4 kv = k4[d], qv = q4[d];
          dot += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
        }
      } else {
        for (int64_t d = 0; d < hd; ++d) dot += qs[d] * kr[d];
      }
      s = dot;
    }
    const float chunk_max = warp_max(s);
    if (chunk_max == -INFINITY) continue;  // every key of the chunk masked (warp-uniform)
    const float m_new = fmaxf(m, chunk_max);
    const float corr = expf(m - m_new);  // m = -inf on the first chunk: 0
    const float w = s == -INFINITY ? 0.0f : expf(s - m_new);
    l = l * corr + warp_sum(w);
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) acc[i] *= corr;
    m = m_new;
    const int n_chunk = static_cast<int>(n_keys - j0 < 32 ? n_keys - j0 : 32);
#pragma unroll 4
    for (int u = 0; u < n_chunk; ++u) {
      const float wu = __shfl_sync(0xffffffffu, w, u);
      const int64_t bu = __shfl_sync(0xffffffffu, base, u);
      if (wu == 0.0f) continue;  // masked key (warp-uniform)
      const float* vr = p.v_pool + bu;
#pragma unroll
      for (int i = 0; i < kPerLane; ++i) {
        const int64_t d = lane + 32 * i;
        if (d < hd) acc[i] += wu * vr[d];
      }
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
