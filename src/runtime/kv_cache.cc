#include "runtime/kv_cache.h"

#include <algorithm>

#include <fmt/format.h>

#include "kpt/status.h"

namespace kpt::runtime {

KvCache::KvCache(int64_t block_size, int64_t n_blocks) : block_size_(block_size), n_blocks_(0) {
  KPT_CHECK(block_size > 0 && n_blocks > 0, "KV cache needs positive block size and count");
  grow(n_blocks);
}

void KvCache::grow(int64_t min_blocks) {
  int64_t target = std::max<int64_t>(min_blocks, n_blocks_ * 2);
  for (int64_t b = target - 1; b >= n_blocks_; --b) free_blocks_.push_back(static_cast<int32_t>(b));
  n_blocks_ = target;
}

int32_t KvCache::take_block() {
  if (free_blocks_.empty()) grow(n_blocks_ + 1);
  int32_t b = free_blocks_.back();
  free_blocks_.pop_back();
  return b;
}

int64_t KvCache::new_sequence() {
  int64_t id = next_id_++;
  seqs_[id] = Sequence{};
  return id;
}

void KvCache::free_sequence(int64_t id) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) return;
  for (int32_t b : it->second.blocks) free_blocks_.push_back(b);
  seqs_.erase(it);
}

int64_t KvCache::length(int64_t id) const { return static_cast<int64_t>(seqs_.at(id).key_valid.size()); }
int64_t KvCache::valid_tokens(int64_t id) const { return seqs_.at(id).n_valid; }

void KvCache::append(int64_t id, const std::vector<int64_t>& mask) {
  auto it = seqs_.find(id);
  KPT_CHECK(it != seqs_.end(), fmt::format("unknown KV sequence {}", id));
  Sequence& s = it->second;
  const int64_t new_len = static_cast<int64_t>(s.key_valid.size() + mask.size());
  while (static_cast<int64_t>(s.blocks.size()) * block_size_ < new_len) s.blocks.push_back(take_block());
  for (int64_t m : mask) {
    s.key_valid.push_back(m != 0 ? 1 : 0);
    s.n_valid += m != 0;
  }
}

void KvCache::rollback(int64_t id, int64_t n_tokens) {
  Sequence& s = seqs_.at(id);
  for (int64_t i = 0; i < n_tokens && !s.key_valid.empty(); ++i) {
    s.n_valid -= s.key_valid.back();
    s.key_valid.pop_back();
  }
  while (!s.blocks.empty() && static_cast<int64_t>(s.blocks.size() - 1) * block_size_ >= static_cast<int64_t>(s.key_valid.size())) {
    free_blocks_.push_back(s.blocks.back());
    s.blocks.pop_back();
  }
}

KvStep KvCache::step(const std::vector<int64_t>& seq_ids, int64_t n_new) const {
  KvStep step;
  step.capacity_blocks = n_blocks_;
  for (int64_t id : seq_ids) {
    const Sequence& s = seqs_.at(id);
    SequenceView view;
    view.block_table = s.blocks.data();
    view.n_blocks = static_cast<int64_t>(s.blocks.size());
    view.past_len = static_cast<int64_t>(s.key_valid.size()) - n_new;
    view.key_valid = s.key_valid.data();
    step.seqs.push_back(view);
  }
  return step;
}

int64_t KvCache::blocks_in_use() const { return n_blocks_ - static_cast<int64_t>(free_blocks_.size()); }

}  // namespace kpt::runtime
