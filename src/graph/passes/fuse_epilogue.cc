// GEMM epilogues: an activation or a residual add that reads only a linear's output becomes a
// oneDNN post-op of that GEMM (linear_fused), so the [rows, out] result is written once.
#include <fmt/format.h>

#include "graph/passes/pass_util.h"
#include "graph/passes/passes.h"

namespace kpt::graph::passes {

namespace {

Node to_fused(const Node& lin) {
  Node f = lin;
  f.op = OpKind::kLinearFused;
  f.attrs = {{"has_bias", int64_t{lin.inputs.size() > 2 ? 1 : 0}}, {"act", int64_t{-1}}, {"has_residual", int64_t{0}}};
  return f;
}

}  // namespace

Report fuse_epilogue(Graph& g) {
  int n_act = 0, n_bias_act = 0, n_res = 0;
  // Activations first, then residual adds (which may land on a GEMM that already has an activation).
  for (int round = 0; round < 2; ++round) {
    Uses uses(g);
    std::vector<bool> keep(g.nodes().size(), true);
    for (size_t i = 0; i < g.nodes().size(); ++i) {
      Node& n = g.mutable_nodes()[i];
      if (round == 0 && is_activation(n.op)) {
        const int lin = g.value(n.inputs[0]).producer;
        if (lin < 0 || uses.only_reader(n.inputs[0]) != static_cast<int>(i)) continue;
        const Node& l = g.nodes()[static_cast<size_t>(lin)];
        if (l.op != OpKind::kLinear) continue;
        Node f = to_fused(l);
        f.attrs["act"] = static_cast<int64_t>(n.op);
        f.name = n.name;
        f.output = n.output;  // the fused node takes the activation's place and value
        n_bias_act += l.inputs.size() > 2;
        n = f;
        keep[static_cast<size_t>(lin)] = false;
        ++n_act;
      } else if (round == 1 && n.op == OpKind::kAdd) {
        for (int side = 0; side < 2; ++side) {
          const int v = n.inputs[static_cast<size_t>(side)];
          const int lin = g.value(v).producer;
          if (lin < 0 || g.value(v).constant.defined() || uses.only_reader(v) != static_cast<int>(i)) continue;
          const Node& l = g.nodes()[static_cast<size_t>(lin)];
          if (l.op != OpKind::kLinear && !(l.op == OpKind::kLinearFused && l.attr_int("has_residual") == 0)) continue;
          Node f = l.op == OpKind::kLinear ? to_fused(l) : l;
          f.attrs["has_residual"] = int64_t{1};
          f.inputs.push_back(n.inputs[static_cast<size_t>(1 - side)]);
          f.name = n.name;
          f.output = n.output;
          n = f;
          keep[static_cast<size_t>(lin)] = false;
          ++n_res;
          break;
        }
      }
    }
    drop_nodes(g, keep);
  }
  Report r;
  if (n_act > 0) r.push_back(fmt::format("fused bias+activation GEMM epilogues {} ({} with bias)", n_act, n_bias_act));
  if (n_res > 0) r.push_back(fmt::format("fused residual-add GEMM epilogues {}", n_res));
  return r;
}

}  // namespace kpt::graph::passes
