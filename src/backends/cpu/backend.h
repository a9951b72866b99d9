// The CPU backend: compiles a graph into an Executable that runs it node by node.
// At the reference level every node is one kernel call in fp32.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "backends/attention_context.h"
#include "graph/ir.h"
#include "kpt/tensor.h"

namespace kpt::cpu {

class Executable {
 public:
  explicit Executable(const graph::Graph& graph);  // the graph must outlive the Executable

  // Inputs by graph input name. Symbolic dims are bound from the input shapes.
  std::vector<Tensor> run(const std::map<std::string, Tensor>& inputs, const AttentionContext& ctx) const;

 private:
  const graph::Graph& graph_;
  std::vector<int> last_use_;  // per value: index of the last node reading it, -1 if none
};

bool supports(const graph::Node& node);

}  // namespace kpt::cpu
