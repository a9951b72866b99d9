// Helpers shared by the passes: who reads a value, and rebuilding the node list.
#pragma once

#include <vector>

#include "graph/ir.h"

namespace kpt::graph::passes {

// readers[v] = indices of the nodes reading value v; graph outputs count as one extra reader.
struct Uses {
  explicit Uses(const Graph& g);
  int count(int value) const { return static_cast<int>(readers[static_cast<size_t>(value)].size()) + (is_output[static_cast<size_t>(value)] ? 1 : 0); }
  // The single node reading `value`, or -1 when it has zero or several readers (or is an output).
  int only_reader(int value) const;
  std::vector<std::vector<int>> readers;
  std::vector<bool> is_output;
};

// Producer node index of `value` when that node has kind `op`, else -1.
int producer_if(const Graph& g, int value, OpKind op);

bool is_activation(OpKind op);

// Rows of a [n, k] weight stacked into one [sum n, k] f32 tensor.
Tensor concat_rows(const std::vector<Tensor>& parts);

// Keeps the nodes whose `keep` flag is set, in order.
void drop_nodes(Graph& g, const std::vector<bool>& keep);

}  // namespace kpt::graph::passes
