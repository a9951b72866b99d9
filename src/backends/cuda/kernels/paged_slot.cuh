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

}  // namespace kpt::cuda
