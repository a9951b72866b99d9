// act(x Wg^T) * (x Wu^T) -> glu(x [Wg; Wu]^T): the gate and up projections share their input,
// so one GEMM produces both halves and one pass applies the activation and the product
// (SwiGLU for llama-family models) without writing the two [.., F] intermediates.
#include <algorithm>

#include <fmt/format.h>

#include "graph/passes/pass_util.h"
#include "graph/passes/passes.h"

namespace kpt::graph::passes {

Report fuse_glu(Graph& g) {
  Uses uses(g);
  std::vector<bool> keep(g.nodes().size(), true);
  std::vector<std::pair<size_t, Node>> inserts;
  int n_fused = 0;
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const Node& n = g.nodes()[i];
    if (n.op != OpKind::kMul) continue;
    // Either operand order: the activated one is the gate.
    for (int side = 0; side < 2; ++side) {
      const int gate_v = n.inputs[static_cast<size_t>(side)], up_v = n.inputs[static_cast<size_t>(1 - side)];
      const int act = g.value(gate_v).producer;
      if (act < 0 || !is_activation(g.nodes()[static_cast<size_t>(act)].op)) continue;
      const Node& a = g.nodes()[static_cast<size_t>(act)];
      const int lg = producer_if(g, a.inputs[0], OpKind::kLinear), lu = producer_if(g, up_v, OpKind::kLinear);
      if (lg < 0 || lu < 0 || uses.only_reader(gate_v) != static_cast<int>(i) ||
          uses.only_reader(up_v) != static_cast<int>(i) || uses.only_reader(a.inputs[0]) != act) {
        continue;
      }
      const Node& ng = g.nodes()[static_cast<size_t>(lg)];
      const Node& nu = g.nodes()[static_cast<size_t>(lu)];
      if (ng.inputs[0] != nu.inputs[0]) continue;
      const bool bias = ng.inputs.size() > 2 || nu.inputs.size() > 2;
      // Copies (shared storage), not references: add_weight below grows the value table.
      const Tensor wg = g.value(ng.inputs[1]).constant;
      const Tensor wu = g.value(nu.inputs[1]).constant;
      if (wg.shape() != wu.shape()) continue;
      std::vector<int> in = {ng.inputs[0], g.add_weight(n.name + ".gate_up.weight", concat_rows({wg, wu}))};
      if (bias) {
        auto b_or_zero = [&](const Node& l) {
          return l.inputs.size() > 2 ? g.value(l.inputs[2]).constant : Tensor::empty(DType::kF32, {wg.dim(0)});
        };
        in.push_back(g.add_weight(n.name + ".gate_up.bias", concat_rows({b_or_zero(ng), b_or_zero(nu)})));
      }
      SymShape shape = g.value(n.output).shape;
      shape.back() = Dim::c(2 * wg.dim(0));
      const int packed = g.add_value(n.name + ".gate_up", DType::kF32, shape);  // [B, S, 2F]
      inserts.push_back({static_cast<size_t>(std::min(lg, lu)), Node{OpKind::kLinear, n.name + ".gate_up", in, packed, {}}});
      Node& m = g.mutable_nodes()[i];
      const OpKind act_op = g.nodes()[static_cast<size_t>(act)].op;
      m.op = OpKind::kGlu;
      m.inputs = {packed};
      m.attrs = {{"act", static_cast<int64_t>(act_op)}};
      keep[static_cast<size_t>(lg)] = keep[static_cast<size_t>(lu)] = keep[static_cast<size_t>(act)] = false;
      ++n_fused;
      break;
    }
  }
  if (n_fused == 0) return {};
  std::sort(inserts.begin(), inserts.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Node> nodes;
  size_t next = 0;
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    while (next < inserts.size() && inserts[next].first == i) nodes.push_back(inserts[next++].second);
    if (keep[i]) nodes.push_back(g.nodes()[i]);
  }
  g.replace_nodes(std::move(nodes));
  return {fmt::format("packed gate/up GEMM + fused GLU (act * up) {} layers", n_fused)};
}

}  // namespace kpt::graph::passes
