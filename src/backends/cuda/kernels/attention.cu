// Paged attention over the K/V pools: the K/V write of a step and the attention itself.
//
// paged_attention: one warp per query row (b, t, h); keys stream through an online softmax
// (running max and denominator) in chunks of 32, so nothing is materialized and one kernel
// serves prefill and decode at any context length. Consecutive warps of a block
// are consecutive heads: with GQA the heads of a group share their K/V rows through L1.
// Few query rows (decode) use a split-key variant: a block of warps per row, partial softmax
// states merged in shared memory. Prefill and encoder calls (seq >= 32, head_dim <= 64) use a
// tiled kernel sharing K/V tiles across 64 query rows; at levels that allow reduced precision
// they use the tensor-core kernel instead (fp16 operands, fp32 accumulation, mma.sync).
#include <cmath>

#include <cuda_fp16.h>

#include "backends/cuda/check.h"
#include "backends/cuda/kernels/kernels.h"
#include "backends/cuda/kernels/paged_slot.cuh"
#include "backends/cuda/kernels/vec4_store.cuh"

namespace kpt::cuda {

namespace {

constexpr int kWarpsPerBlock = 4;

// One block per new token; threads over n_kv_heads * head_dim.
__global__ void kv_write_kernel(PagedAttention p, const float* __restrict__ k, const float* __restrict__ v, bool vec4) {
  const int64_t bt = blockIdx.x;  // b * seq + t
  const int64_t b = bt / p.seq, t = bt % p.seq;
  const int64_t row_len = p.n_kv_heads * p.head_dim;
  const int64_t dst = slot_row(p, b, p.past_len[b] + t) * row_len;
  if (vec4) {  // 16-byte rows and pointers
    for (int64_t i = threadIdx.x; i < row_len / 4; i += blockDim.x) {
      reinterpret_cast<float4*>(p.k_pool + dst)[i] = reinterpret_cast<const float4*>(k + bt * row_len)[i];
      reinterpret_cast<float4*>(p.v_pool + dst)[i] = reinterpret_cast<const float4*>(v + bt * row_len)[i];
    }
    return;
  }
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
// This warp visits the chunks starting at first_key + 32 * split, every 32 * n_splits keys.
template <int kPerLane>
__device__ __forceinline__ void attend_chunks(const PagedAttention& p, const float* qs, int64_t b, int64_t kvh,
                                              int64_t first_key, int64_t n_keys, int split, int n_splits,
                                              float (&acc)[kPerLane], float& m, float& l) {
  const int lane = threadIdx.x % 32;
  const int64_t hd = p.head_dim;
  const bool vec4 = hd % 4 == 0;  // then every K row offset is a multiple of 4 floats
  for (int64_t j0 = first_key + 32 * int64_t{split}; j0 < n_keys; j0 += 32 * int64_t{n_splits}) {
    const int64_t j = j0 + lane;
    float s = -INFINITY;
    int64_t base = key_offset(p, b, j, n_keys, first_key, kvh);
    if (base >= 0) {
      const float* kr = p.k_pool + base;
      float dot = 0.0f;
      if (vec4) {
        // Unrolled to the compile-time bound: all of the row's 16-byte loads are in flight at
        // once (a run-time bound left them one latency apart: ~20 us per decode layer, ncu).
        const float4* k4 = reinterpret_cast<const float4*>(kr);
        const float4* q4 = reinterpret_cast<const float4*>(qs);
#pragma unroll
        for (int c = 0; c < 8 * kPerLane; ++c) {
          if (4 * c < hd) {
            const float4 kv = k4[c], qv = q4[c];
            dot += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
          }
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
    // V rows in groups of 8 keys: the group's loads are independent (predicated, not branched
    // around), so 8 * kPerLane of them are in flight per lane instead of one at a time.
    // (Unrolling all four groups with predicated loads was tried: decode attention went from 25
    // to 32 us per layer on an H200, so the groups stay a loop.)
    const int n_chunk = static_cast<int>(n_keys - j0 < 32 ? n_keys - j0 : 32);
    for (int u0 = 0; u0 < n_chunk; u0 += 8) {
      float wg[8], vg[8][kPerLane];
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const int u = u0 + e;  // < 32
        const float wu = __shfl_sync(0xffffffffu, w, u);
        const int64_t bu = __shfl_sync(0xffffffffu, base, u);
        const bool use = u < n_chunk && wu != 0.0f;  // masked keys have weight 0 and maybe no K/V
        wg[e] = use ? wu : 0.0f;
#pragma unroll
        for (int i = 0; i < kPerLane; ++i) {
          const int64_t d = lane + 32 * i;
          vg[e][i] = use && d < hd ? p.v_pool[bu + d] : 0.0f;
        }
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) {
#pragma unroll
        for (int i = 0; i < kPerLane; ++i) acc[i] += wg[e] * vg[e][i];
      }
    }
  }
}

// The query row's visible keys [first_key, n_keys) and its K/V head.
struct RowSpan {
  int64_t b, kvh, first_key, n_keys;
};

__device__ __forceinline__ RowSpan row_span(const PagedAttention& p, int64_t row) {
  const int64_t h = row % p.n_heads;
  const int64_t bt = row / p.n_heads;
  const int64_t b = bt / p.seq, t = bt % p.seq;
  const int64_t past = p.past_len[b];
  const int64_t qpos = past + t;
  RowSpan r;
  r.b = b;
  r.kvh = h / (p.n_heads / p.n_kv_heads);
  r.n_keys = p.causal ? qpos + 1 : past + p.seq;
  r.first_key = p.window > 0 && qpos - p.window + 1 > 0 ? qpos - p.window + 1 : 0;
  return r;
}

template <int kPerLane>
__device__ __forceinline__ void load_q(const PagedAttention& p, const float* __restrict__ q, int64_t row, float* qs) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int64_t d = lane + 32 * i;
    qs[d] = d < p.head_dim ? q[row * p.head_dim + d] * p.scale : 0.0f;
  }
  __syncwarp();
}

// One warp per query row: many rows (prefill, large batches) fill the GPU this way.
template <int kPerLane>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    attention_kernel(PagedAttention p, const float* __restrict__ q, float* __restrict__ out) {
  __shared__ __align__(16) float q_smem[kWarpsPerBlock][32 * kPerLane];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = int64_t{blockIdx.x} * kWarpsPerBlock + warp;  // (b * seq + t) * n_heads + h
  if (row >= p.batch * p.seq * p.n_heads) return;  // whole warps only: no block barrier below
  const RowSpan r = row_span(p, row);
  float* qs = q_smem[warp];
  load_q<kPerLane>(p, q, row, qs);
  float acc[kPerLane];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) acc[i] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  attend_chunks<kPerLane>(p, qs, r.b, r.kvh, r.first_key, r.n_keys, 0, 1, acc, m, l);
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;  // no visible key: zeros, as the reference
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int64_t d = lane + 32 * i;
    if (d < p.head_dim) out[row * p.head_dim + d] = acc[i] * inv;
  }
}

// Split keys: one block per query row, its kSplits warps take interleaved chunks of 32 keys and
// their partial softmax states (m, l, acc) are merged through shared memory. Decode has only
// batch * n_heads rows (32 warps at batch 1 for a 1B LLaMA: 8 of 132 SMs busy, each walking the
// whole context); splitting gives 8x the warps and an eighth of the serial chunk chain.
constexpr int kSplits = 8;

template <int kPerLane>
__global__ void __launch_bounds__(kSplits * 32)
    attention_split_kernel(PagedAttention p, const float* __restrict__ q, float* __restrict__ out) {
  __shared__ __align__(16) float q_smem[32 * kPerLane];
  __shared__ float acc_smem[kSplits][32 * kPerLane];
  __shared__ float m_smem[kSplits], l_smem[kSplits];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = blockIdx.x;
  const RowSpan r = row_span(p, row);
  if (warp == 0) load_q<kPerLane>(p, q, row, q_smem);
  __syncthreads();
  float acc[kPerLane];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) acc[i] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  attend_chunks<kPerLane>(p, q_smem, r.b, r.kvh, r.first_key, r.n_keys, warp, kSplits, acc, m, l);
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) acc_smem[warp][lane + 32 * i] = acc[i];
  if (lane == 0) {
    m_smem[warp] = m;
    l_smem[warp] = l;
  }
  __syncthreads();
  float m_all = -INFINITY;
#pragma unroll
  for (int w = 0; w < kSplits; ++w) m_all = fmaxf(m_all, m_smem[w]);
  for (int64_t d = threadIdx.x; d < p.head_dim; d += blockDim.x) {
    float num = 0.0f, den = 0.0f;
    if (m_all != -INFINITY) {  // else no visible key: zeros, as the reference
#pragma unroll
      for (int w = 0; w < kSplits; ++w) {
        if (m_smem[w] == -INFINITY) continue;  // this warp saw no visible key
        const float c = expf(m_smem[w] - m_all);
        num += acc_smem[w][d] * c;
        den += l_smem[w] * c;
      }
    }
    out[row * p.head_dim + d] = den > 0.0f ? num / den : 0.0f;
  }
}

// Tiled prefill/encoder attention (head_dim <= 64, a multiple of 4): a block takes 64 query rows
// of one (batch, head) and streams the visible keys through shared memory in tiles of 32, so a
// K/V row is read from L2 once per 64 queries instead of once per query (the warp-per-row kernel
// re-read ~2 GB per layer from L2 at s512: 546 us per layer on an H200). Four lanes share a query
// row, each owning 16 of the 64 dims: q and the output accumulator live in registers, the dot
// product is finished with two xor shuffles (all four lanes then hold the same score, bitwise),
// and the online softmax runs per 32-key tile. fp32 throughout, so it serves every level.
constexpr int kTileQ = 64, kTileK = 32, kSubK = 8, kTiledHd = 64, kLanesPerRow = 4, kDimsPerLane = kTiledHd / kLanesPerRow;

// Column of float4 c (0..15) in a padded K/V tile row: lanes 2 and 3 start one float4 later.
__device__ __forceinline__ int padded_col(int c) { return c + (c >= kTiledHd / 8 ? 1 : 0); }

__global__ void __launch_bounds__(kTileQ * kLanesPerRow, 3)
    attention_tiled_kernel(PagedAttention p, const float* __restrict__ q, float* __restrict__ out) {
  // One float4 of padding after the first two lanes' dims: the four lanes of a row read 16 bytes
  // each at 64-byte strides, and lanes 0/2 (1/3) would hit the same banks (a 2-way conflict that
  // doubled the shared-memory wavefronts, the kernel's bottleneck per ncu).
  __shared__ float4 k_tile[kTileK][kTiledHd / 4 + 1];
  __shared__ float4 v_tile[kTileK][kTiledHd / 4 + 1];
  __shared__ uint8_t key_ok[kTileK];
  const int tid = threadIdx.x;
  const int part = tid % kLanesPerRow;  // dims [16 * part, 16 * part + 16)
  const int64_t t0 = int64_t{blockIdx.x} * kTileQ;
  const int64_t t = t0 + tid / kLanesPerRow;
  const int64_t b = blockIdx.y / p.n_heads, h = blockIdx.y % p.n_heads;
  const bool active = t < p.seq;
  const int64_t hd = p.head_dim, row_len = p.n_kv_heads * hd;
  const int64_t kvh = h / (p.n_heads / p.n_kv_heads);
  const int64_t past = p.past_len[b];
  const int64_t qpos = past + t;
  const int64_t n_keys = p.causal ? qpos + 1 : past + p.seq;
  const int64_t first_key = p.window > 0 && qpos - p.window + 1 > 0 ? qpos - p.window + 1 : 0;
  // Keys any row of the block can see: first_key grows with t, n_keys too (or is constant).
  const int64_t t_last = t0 + kTileQ - 1 < p.seq - 1 ? t0 + kTileQ - 1 : p.seq - 1;
  const int64_t lo = p.window > 0 && past + t0 - p.window + 1 > 0 ? past + t0 - p.window + 1 : 0;
  const int64_t hi = p.causal ? past + t_last + 1 : past + p.seq;
  const uint8_t* valid = p.key_valid + b * p.key_valid_stride;
  const int64_t row = ((b * p.seq + (active ? t : 0)) * p.n_heads + h);

  float qv[kDimsPerLane], acc[kDimsPerLane];
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int64_t d = part * kDimsPerLane + i;
    qv[i] = active && d < hd ? q[row * hd + d] * p.scale : 0.0f;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int64_t j0 = lo; j0 < hi; j0 += kTileK) {
    __syncthreads();  // the previous tile is consumed
    for (int idx = tid; idx < kTileK * (kTiledHd / 4); idx += blockDim.x) {
      const int key = idx / (kTiledHd / 4), c = idx % (kTiledHd / 4);
      const int64_t j = j0 + key;
      float4 kv = make_float4(0.0f, 0.0f, 0.0f, 0.0f), vv = kv;
      if (j < hi && 4 * c < hd) {
        const int64_t base = slot_row(p, b, j) * row_len + kvh * hd + 4 * c;
        kv = *reinterpret_cast<const float4*>(p.k_pool + base);
        vv = *reinterpret_cast<const float4*>(p.v_pool + base);
      }
      k_tile[key][padded_col(c)] = kv;
      v_tile[key][padded_col(c)] = vv;
    }
    if (tid < kTileK) key_ok[tid] = j0 + tid < hi && valid[j0 + tid] != 0 ? 1 : 0;
    __syncthreads();
    // The softmax state advances per 8 keys: 8 scores in registers, not 32 (ncu: the 32-score
    // version needed 127 registers, 4 warps per scheduler, and stalled on shared-memory loads).
#pragma unroll 1
    for (int sub = 0; sub < kTileK; sub += kSubK) {
    float s[kSubK];
    float tile_max = -INFINITY;
#pragma unroll
    for (int jj0 = 0; jj0 < kSubK; ++jj0) {
      const int jj = sub + jj0;
      float d0 = 0.0f, d1 = 0.0f;
#pragma unroll
      for (int c = 0; c < kDimsPerLane / 4; ++c) {
        const float4 kv = k_tile[jj][padded_col(part * (kDimsPerLane / 4) + c)];
        d0 = fmaf(qv[4 * c], kv.x, d0);
        d1 = fmaf(qv[4 * c + 1], kv.y, d1);
        d0 = fmaf(qv[4 * c + 2], kv.z, d0);
        d1 = fmaf(qv[4 * c + 3], kv.w, d1);
      }
      float dot = d0 + d1;
      dot += __shfl_xor_sync(0xffffffffu, dot, 1);
      dot += __shfl_xor_sync(0xffffffffu, dot, 2);
      const int64_t j = j0 + jj;
      const bool visible = active && key_ok[jj] != 0 && j >= first_key && j < n_keys;
      s[jj0] = visible ? dot : -INFINITY;
      tile_max = fmaxf(tile_max, s[jj0]);
    }
    if (tile_max == -INFINITY) continue;  // nothing visible to this row here (no barrier skipped)
    const float m_new = fmaxf(m, tile_max);
    const float corr = expf(m - m_new);  // m = -inf before the first visible key: 0
    l *= corr;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) acc[i] *= corr;
#pragma unroll
    for (int jj0 = 0; jj0 < kSubK; ++jj0) {
      const int jj = sub + jj0;
      const float pj = s[jj0] == -INFINITY ? 0.0f : expf(s[jj0] - m_new);
      l += pj;
#pragma unroll
      for (int c = 0; c < kDimsPerLane / 4; ++c) {
        const float4 vv = v_tile[jj][padded_col(part * (kDimsPerLane / 4) + c)];
        acc[4 * c] = fmaf(pj, vv.x, acc[4 * c]);
        acc[4 * c + 1] = fmaf(pj, vv.y, acc[4 * c + 1]);
        acc[4 * c + 2] = fmaf(pj, vv.z, acc[4 * c + 2]);
        acc[4 * c + 3] = fmaf(pj, vv.w, acc[4 * c + 3]);
      }
    }
    m = m_new;
    }
  }
  if (!active) return;
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;  // no visible key: zeros, as the reference
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int64_t d = part * kDimsPerLane + i;
    if (d < hd) out[row * hd + d] = acc[i] * inv;
  }
}


// Tensor-core prefill/encoder attention (FlashAttention-2 style, mma.sync m16n8k16, fp16 operands
// with fp32 accumulation). A block of 4 warps takes 64 query rows of one (batch, head); each warp
// owns 16 rows, keeps its Q fragments and its O accumulator in registers, and the online softmax
// runs on the S fragments directly (the S accumulator layout is the A-operand layout of P V, so P
// never goes through shared memory). K/V tiles of 64 keys are read from the fp32 pools, rounded
// to fp16 and stored row-major with 16 bytes of padding per row (conflict-free fragment loads);
// V's B fragments come from ldmatrix.trans. Scores are in the log2 domain (Q pre-scaled by
// scale * log2 e) so the softmax uses exp2. fp16 (11-bit mantissa) rather than bf16 keeps the
// rounding of Q, K, P and V at 2^-12 relative; values beyond fp16's range (6.5e4) would overflow.
constexpr int kTcRows = 64, kTcKeys = 64, kTcWarps = 4;

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const __half* row) {
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// One K or V tile from the pool into registers: kN float4 per thread, all loads independent (the
// keys' pool offsets come from shared memory), so they are in flight together. The first version
// looked up the block table and the key mask per float4 in a run-time-bounded loop: three
// dependent global loads, eight times over per tile and thread (~55 us per LLaMA-1B layer at
// s512 on an H200, most of it waiting on those chains).
template <int kHd, int kN>
__device__ __forceinline__ void load_tile(const float* __restrict__ pool, const int64_t* key_base, int64_t hd, int tid,
                                          float4 (&r)[kN]) {
#pragma unroll
  for (int it = 0; it < kN; ++it) {
    const int idx = tid + it * kTcWarps * 32;
    const int key = idx / (kHd / 4), c = idx % (kHd / 4);
    const int64_t base = key_base[key];
    r[it] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);  // masked keys load as zeros: 0 x non-finite V is NaN
    if (base >= 0 && 4 * c < hd) r[it] = __ldg(reinterpret_cast<const float4*>(pool + base + 4 * c));
  }
}

// Rounds a loaded tile to fp16 into its padded shared rows.
template <int kHd, int kN, int kStride>
__device__ __forceinline__ void store_tile(const float4 (&r)[kN], __half (*tile)[kStride], int tid) {
#pragma unroll
  for (int it = 0; it < kN; ++it) {
    const int idx = tid + it * kTcWarps * 32;
    const int key = idx / (kHd / 4), c = idx % (kHd / 4);
    *reinterpret_cast<uint2*>(&tile[key][4 * c]) = make_uint2(pack_half2(r[it].x, r[it].y), pack_half2(r[it].z, r[it].w));
  }
}

template <int kHd>
__global__ void __launch_bounds__(kTcWarps * 32)
    attention_tc_kernel(PagedAttention p, const float* __restrict__ q, float* __restrict__ out) {
  constexpr int kStride = kHd + 8;  // halves per shared row
  __shared__ __align__(16) __half k_s[kTcKeys][kStride];
  __shared__ __align__(16) __half v_s[kTcKeys][kStride];
  // Pool offset of key j0 + i's row for this K/V head, or -1: masked, or past the visible keys.
  // Double-buffered: the next tile's offsets are looked up while this tile's K/V loads are in
  // flight. (Looking up the whole visible range once before the loop, up to 1,024 keys, measured
  // 63 vs 69 us per BERT-base b32 layer but 44 vs 35 us per causal LLaMA-1B s512 layer.)
  __shared__ int64_t key_base_buf[2][kTcKeys];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, tig = lane % 4;  // fragment row group and thread-in-group
  const int64_t b = blockIdx.y / p.n_heads, h = blockIdx.y % p.n_heads;
  const int64_t hd = p.head_dim;
  const int64_t kvh = h / (p.n_heads / p.n_kv_heads);
  const int64_t past = p.past_len[b];
  const int64_t t0 = int64_t{blockIdx.x} * kTcRows;
  // This thread's two query rows: fragment rows g and g + 8 of the warp's 16.
  int64_t t_r[2], first_r[2], end_r[2];
  bool active_r[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    t_r[i] = t0 + warp * 16 + g + 8 * i;
    active_r[i] = t_r[i] < p.seq;
    const int64_t qpos = past + t_r[i];
    end_r[i] = !active_r[i] ? 0 : p.causal ? qpos + 1 : past + p.seq;
    first_r[i] = p.window > 0 && qpos - p.window + 1 > 0 ? qpos - p.window + 1 : 0;
  }
  // Keys any row of the block can see (as in the tiled kernel).
  const int64_t t_last = t0 + kTcRows - 1 < p.seq - 1 ? t0 + kTcRows - 1 : p.seq - 1;
  const int64_t lo = p.window > 0 && past + t0 - p.window + 1 > 0 ? past + t0 - p.window + 1 : 0;
  const int64_t hi = p.causal ? past + t_last + 1 : past + p.seq;

  // Q as A fragments: a[0] (row g, dims 2tig..), a[1] (row g+8), a[2] (row g, dims +8), a[3].
  const float qscale = p.scale * 1.4426950408889634f;
  uint32_t qf[kHd / 16][4];
#pragma unroll
  for (int kk = 0; kk < kHd / 16; ++kk) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t d = kk * 16 + 8 * half + 2 * tig;  // even; head_dim % 4 == 0, so d + 1 < hd too
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        float x0 = 0.0f, x1 = 0.0f;
        if (active_r[i] && d < hd) {
          const float2 v = *reinterpret_cast<const float2*>(q + ((b * p.seq + t_r[i]) * p.n_heads + h) * hd + d);
          x0 = v.x * qscale;
          x1 = v.y * qscale;
        }
        qf[kk][2 * half + i] = pack_half2(x0, x1);
      }
    }
  }
  float o[kHd / 8][4];
#pragma unroll
  for (int nt = 0; nt < kHd / 8; ++nt) o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0.0f;
  float m_r[2] = {-INFINITY, -INFINITY}, l_r[2] = {0.0f, 0.0f};  // l: this thread's columns only

  if (tid < kTcKeys && lo < hi) key_base_buf[0][tid] = key_offset(p, b, lo + tid, hi, lo, kvh);
  int buf = 0;
  for (int64_t j0 = lo; j0 < hi; j0 += kTcKeys, buf ^= 1) {
    __syncthreads();  // the previous tile is consumed; this tile's offsets are written
    const int64_t* key_base = key_base_buf[buf];
    const bool has_next = j0 + kTcKeys < hi;
    int64_t next = -1;
    if (tid < kTcKeys && has_next) next = key_offset(p, b, j0 + kTcKeys + tid, hi, lo, kvh);
    constexpr int kN = kTcKeys * (kHd / 4) / (kTcWarps * 32);  // float4 per thread per tile
    static_assert(kN * kTcWarps * 32 == kTcKeys * (kHd / 4), "whole tiles per pass");
    if constexpr (kN <= 8) {  // K and V loads in flight together (64 registers)
      float4 kr[kN], vr[kN];
      load_tile<kHd>(p.k_pool, key_base, hd, tid, kr);
      load_tile<kHd>(p.v_pool, key_base, hd, tid, vr);
      store_tile<kHd, kN, kStride>(kr, k_s, tid);
      store_tile<kHd, kN, kStride>(vr, v_s, tid);
    } else {  // head_dim 128: one tensor at a time
      float4 r[kN];
      load_tile<kHd>(p.k_pool, key_base, hd, tid, r);
      store_tile<kHd, kN, kStride>(r, k_s, tid);
      load_tile<kHd>(p.v_pool, key_base, hd, tid, r);
      store_tile<kHd, kN, kStride>(r, v_s, tid);
    }
    if (tid < kTcKeys && has_next) key_base_buf[buf ^ 1][tid] = next;  // read after the next loop-top barrier
    __syncthreads();

    // S = Q K^T: 16 rows x 64 keys per warp, 8 n-tiles of 8 keys. B = K^T: b0 = K[key g][dims 2tig..].
    float s[kTcKeys / 8][4];
#pragma unroll
    for (int nt = 0; nt < kTcKeys / 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kHd / 16; ++kk) {
#pragma unroll
      for (int nt = 0; nt < kTcKeys / 8; ++nt) {
        const __half* kr = &k_s[nt * 8 + g][kk * 16 + 2 * tig];
        mma_16816(s[nt], qf[kk], *reinterpret_cast<const uint32_t*>(kr), *reinterpret_cast<const uint32_t*>(kr + 8));
      }
    }
    // Mask; row maxima over the quad that shares a row.
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < kTcKeys / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = e / 2, key = nt * 8 + 2 * tig + (e & 1);
        const int64_t j = j0 + key;
        if (key_base[key] < 0 || j < first_r[i] || j >= end_r[i]) s[nt][e] = -INFINITY;
        mx[i] = fmaxf(mx[i], s[nt][e]);
      }
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
    }
    // Nothing visible to any row of this warp here (causal diagonal, windows): skip P V.
    if (__all_sync(0xffffffffu, mx[0] == -INFINITY && mx[1] == -INFINITY)) continue;
    float corr[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const float m_new = fmaxf(m_r[i], mx[i]);
      corr[i] = m_new == -INFINITY ? 1.0f : exp2f(m_r[i] - m_new);  // first visible key: exp2(-inf) = 0
      m_r[i] = m_new;
      l_r[i] *= corr[i];
    }
#pragma unroll
    for (int nt = 0; nt < kHd / 8; ++nt) {
      o[nt][0] *= corr[0];
      o[nt][1] *= corr[0];
      o[nt][2] *= corr[1];
      o[nt][3] *= corr[1];
    }
    // P = exp2(S - m) as A fragments of P V: n-tiles 2kk and 2kk + 1 form k-step kk.
    uint32_t pf[kTcKeys / 16][4];
#pragma unroll
    for (int nt = 0; nt < kTcKeys / 8; ++nt) {
      float pe[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = e / 2;
        pe[e] = s[nt][e] == -INFINITY ? 0.0f : exp2f(s[nt][e] - m_r[i]);
        l_r[i] += pe[e];
      }
      pf[nt / 2][2 * (nt % 2)] = pack_half2(pe[0], pe[1]);
      pf[nt / 2][2 * (nt % 2) + 1] = pack_half2(pe[2], pe[3]);
    }
    // O += P V. ldmatrix.trans of V rows (keys) gives B fragments: matrices (keys +0/+8) x (dims +0/+8).
    const int mat = lane / 8, mrow = lane % 8;
#pragma unroll
    for (int kk = 0; kk < kTcKeys / 16; ++kk) {
#pragma unroll
      for (int np = 0; np < kHd / 16; ++np) {
        uint32_t vb[4];
        ldmatrix_x4_trans(vb, &v_s[kk * 16 + (mat % 2) * 8 + mrow][np * 16 + (mat / 2) * 8]);
        mma_16816(o[2 * np], pf[kk], vb[0], vb[1]);
        mma_16816(o[2 * np + 1], pf[kk], vb[2], vb[3]);
      }
    }
  }
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l_r[i] += __shfl_xor_sync(0xffffffffu, l_r[i], 1);
    l_r[i] += __shfl_xor_sync(0xffffffffu, l_r[i], 2);
  }
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    if (!active_r[i]) continue;
    const float inv = l_r[i] > 0.0f ? 1.0f / l_r[i] : 0.0f;  // no visible key: zeros, as the reference
    float* dst = out + ((b * p.seq + t_r[i]) * p.n_heads + h) * hd;
#pragma unroll
    for (int nt = 0; nt < kHd / 8; ++nt) {
      const int64_t d = nt * 8 + 2 * tig;
      if (d < hd) *reinterpret_cast<float2*>(dst + d) = make_float2(o[nt][2 * i] * inv, o[nt][2 * i + 1] * inv);
    }
  }
}

}  // namespace

void paged_kv_write(const PagedAttention& p, const float* k, const float* v, cudaStream_t stream) {
  if (p.batch * p.seq == 0) return;
  const int64_t row_len = p.n_kv_heads * p.head_dim;
  const bool vec4 = row_len % 4 == 0 && aligned_to(k, 16) && aligned_to(v, 16) && aligned_to(p.k_pool, 16) &&
                    aligned_to(p.v_pool, 16);
  kv_write_kernel<<<static_cast<unsigned>(p.batch * p.seq), 256, 0, stream>>>(p, k, v, vec4);
  KPT_CUDA_CHECK_LAUNCH();
}

void paged_attention(const PagedAttention& p, const float* q, float* out, cudaStream_t stream) {
  const int64_t rows = p.batch * p.seq * p.n_heads;
  if (rows == 0) return;
  // Prefill and encoder calls where fp16 operands are allowed: tensor cores.
  if (p.tensor_cores && p.seq >= kTiledMinSeq && p.head_dim % 4 == 0 && p.head_dim <= kTcMaxHeadDim) {
    const dim3 grid(static_cast<unsigned>((p.seq + kTcRows - 1) / kTcRows), static_cast<unsigned>(p.batch * p.n_heads));
    if (p.head_dim <= 64) {
      attention_tc_kernel<64><<<grid, kTcWarps * 32, 0, stream>>>(p, q, out);
    } else {
      attention_tc_kernel<128><<<grid, kTcWarps * 32, 0, stream>>>(p, q, out);
    }
    KPT_CUDA_CHECK_LAUNCH();
    return;
  }
  // Prefill and encoder calls: K/V tiles shared by 64 query rows.
  if (p.seq >= kTiledMinSeq && p.head_dim <= kTiledHd && p.head_dim % 4 == 0) {
    const dim3 grid(static_cast<unsigned>((p.seq + kTileQ - 1) / kTileQ), static_cast<unsigned>(p.batch * p.n_heads));
    attention_tiled_kernel<<<grid, kTileQ * kLanesPerRow, 0, stream>>>(p, q, out);
    KPT_CUDA_CHECK_LAUNCH();
    return;
  }
  // Few rows (decode, short encoder calls): split each row's keys over a block of warps.
  if (rows <= kSplitMaxRows) {
    const unsigned grid = static_cast<unsigned>(rows);
    if (p.head_dim <= 64) {
      attention_split_kernel<2><<<grid, kSplits * 32, 0, stream>>>(p, q, out);
    } else if (p.head_dim <= 128) {
      attention_split_kernel<4><<<grid, kSplits * 32, 0, stream>>>(p, q, out);
    } else {
      attention_split_kernel<8><<<grid, kSplits * 32, 0, stream>>>(p, q, out);
    }
    KPT_CUDA_CHECK_LAUNCH();
    return;
  }
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
