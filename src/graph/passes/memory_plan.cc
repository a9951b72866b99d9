// Buffer reuse: intermediate values whose lifetimes do not overlap share a buffer ("slot").
// The executable keeps its slots across runs and grows one only when a larger shape arrives, so a
// decode step of a fixed batch allocates nothing after the first. Graph outputs get fresh tensors
// because they are handed to the caller.
#include <algorithm>

#include <fmt/format.h>

#include "graph/passes/pass_util.h"
#include "graph/passes/passes.h"

namespace kpt::graph::passes {

Report memory_plan(Graph& g) {
  const auto& nodes = g.nodes();
  std::vector<int> last_use(g.values().size(), -1);
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (int v : nodes[i].inputs) last_use[static_cast<size_t>(v)] = static_cast<int>(i);
  }
  std::vector<bool> is_output(g.values().size(), false);
  for (int v : g.outputs()) is_output[static_cast<size_t>(v)] = true;
  std::vector<int64_t> slot_of(g.values().size(), -1);
  std::vector<int64_t> free_slots;
  int64_t n_slots = 0, n_planned = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    Node& n = g.mutable_nodes()[i];
    int64_t slot = -1;
    if (!is_output[static_cast<size_t>(n.output)] && last_use[static_cast<size_t>(n.output)] >= 0) {
      // Output slot chosen before the inputs are released: a kernel never reads and writes one buffer.
      if (free_slots.empty()) {
        slot = n_slots++;
      } else {
        slot = free_slots.back();
        free_slots.pop_back();
      }
      ++n_planned;
    }
    n.attrs["slot"] = slot;
    slot_of[static_cast<size_t>(n.output)] = slot;
    std::vector<int> seen;
    for (int v : n.inputs) {
      if (std::find(seen.begin(), seen.end(), v) != seen.end()) continue;
      seen.push_back(v);
      if (last_use[static_cast<size_t>(v)] == static_cast<int>(i) && slot_of[static_cast<size_t>(v)] >= 0) {
        free_slots.push_back(slot_of[static_cast<size_t>(v)]);
      }
    }
  }
  return {fmt::format("memory plan: {} intermediate values in {} reused buffers, kept across runs",
                      n_planned, n_slots)};
}

}  // namespace kpt::graph::passes
