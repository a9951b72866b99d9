// Paged KV cache: fixed-size blocks in one pool per layer, a block table per sequence.
// Attention reads K/V through block tables, so batching, prefix reuse and serving need no
// redesign. The pool grows (doubling) when sequences need more blocks than it has.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "backends/attention_context.h"

namespace kpt::runtime {

class KvCache {
 public:
  KvCache(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim, int64_t block_size = 16, int64_t n_blocks = 64);

  int64_t new_sequence();
  void free_sequence(int64_t id);
  int64_t length(int64_t id) const;          // tokens stored
  int64_t valid_tokens(int64_t id) const;    // tokens that are not padding

  // Reserves room for `mask.size()` new tokens of sequence `id` (mask: 1 real, 0 padding).
  void append(int64_t id, const std::vector<int64_t>& mask);
  // Undo the last append (the tokens were not written because the step failed).
  void rollback(int64_t id, int64_t n_tokens);

  // View for one step: `seq_ids[b]` got `n_new` tokens by append() just before.
  AttentionContext context(const std::vector<int64_t>& seq_ids, int64_t n_new);

  int64_t block_size() const { return block_size_; }
  int64_t blocks_in_use() const;
  int64_t capacity_blocks() const { return n_blocks_; }

 private:
  struct Sequence {
    std::vector<int32_t> blocks;
    std::vector<uint8_t> key_valid;
    int64_t n_valid = 0;
  };
  void grow(int64_t min_blocks);
  int32_t take_block();

  int64_t n_layers_, n_kv_heads_, head_dim_, block_size_, n_blocks_;
  std::vector<std::vector<float>> k_, v_;  // per layer [n_blocks, block_size, n_kv_heads, head_dim]
  std::vector<int32_t> free_blocks_;
  std::map<int64_t, Sequence> seqs_;
  int64_t next_id_ = 0;
};

}  // namespace kpt::runtime
