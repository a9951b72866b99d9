// Where a token's K/V row lives in the paged pools (device code shared by the kernels that write
// or read them: attention.cu, rope.cu).
#pragma once

#include <cstdint>

#include "backends/cuda/kernels/kernels.h"

namespace kpt::cuda {

// Pool row (block * block_size + offset) of position `pos` of sequence `b`.
__device__ __forceinline__ int64_t slot_row(const PagedAttention& p, int64_t b, int64_t pos) {
  const int64_t block = p.block_tables[b * p.max_blocks + pos / p.block_size];
  return block * p.block_size + pos % p.block_size;
}

// Offset in the pools of key j's row for K/V head kvh of sequence b, or -1 when j >= end or the
// key is masked out. The mask byte and the block-table entry are independent loads (one memory
// latency, not two; an index from [fallback, end) keeps both in bounds).
__device__ __forceinline__ int64_t key_offset(const PagedAttention& p, int64_t b, int64_t j, int64_t end,
                                              int64_t fallback, int64_t kvh) {
  const int64_t jc = j < end ? j : fallback;
  const uint8_t ok = p.key_valid[b * p.key_valid_stride + jc];
  const int64_t block = p.block_tables[b * p.max_blocks + jc / p.block_size];
  const int64_t slot = block * p.block_size + jc % p.block_size;
  return j < end && ok != 0 ? (slot * p.n_kv_heads + kvh) * p.head_dim : -1;
}

}  // namespace kpt::cuda
