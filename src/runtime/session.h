// A loaded model ready to run: graph + compiled executable + KV cache. Validates every input a
// caller can get wrong before any kernel runs.
#pragma once

#include <memory>
#include <vector>

#include "backends/executable.h"
#include "kpt/engine.h"
#include "models/model.h"
#include "runtime/kv_cache.h"

namespace kpt::runtime {

using Rows = std::vector<std::vector<int64_t>>;

class Session {
 public:
  Session(models::BuiltModel model, const CompileOptions& options);

  const ModelInfo& info() const { return model_.info; }
  const graph::Graph& graph() const { return model_.graph; }
  const std::string& device() const { return device_; }
  KvCache& cache() { return cache_; }

  // Checks shapes, masks and id ranges; throws kInvalidArgument / kOutOfRange naming the entry.
  void validate(const ForwardInputs& inputs) const;

  // Whole-batch forward on fresh sequences: logits [B, S, V] or hidden [B, S, H].
  Tensor forward(const ForwardInputs& inputs);

  // Appends ids (and mask) to existing KV sequences and runs them. Returns logits for the last
  // position of every row, [B, 1, V] (causal LMs only).
  Tensor step_last_logits(const std::vector<int64_t>& seq_ids, const Rows& ids, const Rows& mask);
  // As step_last_logits, but returns each row's greedy next token (argmax of its last logits,
  // first maximum) without bringing the logits to the host where the backend can avoid it.
  std::vector<int64_t> step_argmax(const std::vector<int64_t>& seq_ids, const Rows& ids, const Rows& mask);
  // As step_last_logits, but returns each row's sampled next token (Executable::run_sample: on the
  // device where the backend can, else from the host logits), one uniform draw per row in p.r.
  std::vector<int64_t> step_sample(const std::vector<int64_t>& seq_ids, const Rows& ids, const Rows& mask,
                                   const Executable::SampleParams& p);

 private:
  Tensor run(const std::vector<int64_t>& seq_ids, const Rows& ids, const Rows& mask, const Rows& types,
             bool all_rows, bool argmax = false, const Executable::SampleParams* sample = nullptr);
  void check_ids(const Rows& ids) const;

  models::BuiltModel model_;
  std::string device_;
  std::unique_ptr<Executable> exec_;
  KvCache cache_;
};

}  // namespace kpt::runtime
