// What a backend needs from the paged KV cache for one step. The runtime owns block
// bookkeeping (which blocks a sequence holds); the Executable owns the K/V storage itself
// (host memory on CPU, device memory on CUDA), laid out per layer as
// [n_blocks, block_size, n_kv_heads, head_dim].
#pragma once

#include <cstdint>
#include <vector>

namespace kpt {

struct KvLayout {
  int64_t n_layers = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 16;
};

struct SequenceView {
  const int32_t* block_table = nullptr;  // [n_blocks] physical block ids
  int64_t n_blocks = 0;
  int64_t past_len = 0;                  // tokens in the cache before this step
  const uint8_t* key_valid = nullptr;    // [past_len + n_new]: 0 for padding tokens
};

// One step: row b of the batch appends its new tokens to sequence seqs[b].
struct KvStep {
  std::vector<SequenceView> seqs;
  int64_t capacity_blocks = 0;  // the executable's storage must hold this many blocks
};

}  // namespace kpt
