// What an attention kernel needs from the paged KV cache for one step, independent of the
// backend and of how the runtime manages blocks.
#pragma once

#include <cstdint>
#include <vector>

namespace kpt {

struct SequenceView {
  const int32_t* block_table = nullptr;  // [n_blocks] physical block ids
  int64_t past_len = 0;                  // tokens in the cache before this step
  const uint8_t* key_valid = nullptr;    // [past_len + n_new]: 0 for padding tokens
};

struct AttentionContext {
  int64_t block_size = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  // Per layer: pools laid out [n_blocks, block_size, n_kv_heads, head_dim].
  std::vector<float*> k_pool;
  std::vector<float*> v_pool;
  std::vector<SequenceView> seqs;  // one per batch row
};

}  // namespace kpt
