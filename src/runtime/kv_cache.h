// Paged KV cache bookkeeping: fixed-size blocks, a block table and a padding mask per sequence.
// Attention reads K/V through block tables, so batching, prefix reuse and serving need no
// redesign. The storage itself belongs to the backend's Executable; the block count grows
// (doubling) when sequences need more blocks than there are, and the Executable follows.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "backends/attention_context.h"

namespace kpt::runtime {

class KvCache {
 public:
  explicit KvCache(int64_t block_size = 16, int64_t n_blocks = 64);

  int64_t new_sequence();
  void free_sequence(int64_t id);
  int64_t length(int64_t id) const;          // tokens stored
  int64_t valid_tokens(int64_t id) const;    // tokens that are not padding

  // Reserves room for `mask.size()` new tokens of sequence `id` (mask: 1 real, 0 padding).
  void append(int64_t id, const std::vector<int64_t>& mask);
  // Undo the last append (the tokens were not written because the step failed).
  void rollback(int64_t id, int64_t n_tokens);

  // View for one step: `seq_ids[b]` got `n_new` tokens by append() just before.
  KvStep step(const std::vector<int64_t>& seq_ids, int64_t n_new) const;

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

  int64_t block_size_, n_blocks_;
  std::vector<int32_t> free_blocks_;
  std::map<int64_t, Sequence> seqs_;
  int64_t next_id_ = 0;
};

}  // namespace kpt::runtime
