// norm(a + b) -> add_norm(a, b) when nothing else reads the sum (post-norm models such as BERT):
// the sum is formed in registers on the way into the norm and never written.
#include <fmt/format.h>

#include "graph/passes/pass_util.h"
#include "graph/passes/passes.h"

namespace kpt::graph::passes {

Report fuse_residual_norm(Graph& g) {
  Uses uses(g);
  std::vector<bool> keep(g.nodes().size(), true);
  int n_fused = 0, n_norms = 0;
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const Node& n = g.nodes()[i];
    if (n.op != OpKind::kLayerNorm && n.op != OpKind::kRmsNorm) continue;
    ++n_norms;
    const int add = producer_if(g, n.inputs[0], OpKind::kAdd);
    if (add < 0 || uses.only_reader(n.inputs[0]) != static_cast<int>(i)) continue;
    const Node& a = g.nodes()[static_cast<size_t>(add)];
    Node& m = g.mutable_nodes()[i];
    const bool rms = m.op == OpKind::kRmsNorm;
    std::vector<int> in = {a.inputs[0], a.inputs[1], m.inputs[1]};
    if (!rms) in.push_back(m.inputs[2]);
    m.op = OpKind::kAddNorm;
    m.inputs = in;
    m.attrs["rms"] = int64_t{rms ? 1 : 0};
    keep[static_cast<size_t>(add)] = false;
    ++n_fused;
  }
  if (n_fused == 0) return {};
  drop_nodes(g, keep);
  return {fmt::format("fused residual add + norm {}/{} norms", n_fused, n_norms)};
}

}  // namespace kpt::graph::passes
