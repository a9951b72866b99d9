// The CPU backend: runs a graph node by node. At the reference level every node is one fp32
// kernel call; K/V live in host memory owned by the Executable.
#pragma once

#include "backends/executable.h"

namespace kpt::cpu {

std::unique_ptr<Executable> compile(const graph::Graph& graph, const KvLayout& kv);
bool supports(const graph::Node& node);

// Internal view handed to the attention kernel: the storage plus the step's sequences.
struct AttentionContext {
  int64_t block_size = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  std::vector<float*> k_pool;  // per layer
  std::vector<float*> v_pool;
  std::vector<SequenceView> seqs;
};

// Host K/V storage of a CPU executable, per layer [n_blocks, block_size, n_kv_heads, head_dim].
// Grows (keeping its contents) when a step needs more blocks; hands the attention kernels a view.
class HostKvStore {
 public:
  explicit HostKvStore(const KvLayout& kv) : kv_(kv), k_(static_cast<size_t>(kv.n_layers)), v_(k_.size()) {}
  AttentionContext step_context(const KvStep& step);

 private:
  KvLayout kv_;
  std::vector<std::vector<float>> k_, v_;
  int64_t n_blocks_ = 0;
};

}  // namespace kpt::cpu
