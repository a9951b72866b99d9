// Three projections of one input feeding a fused attention become one GEMM over [Wq; Wk; Wv]:
// one pass over the activations instead of three, and one larger GEMM that keeps both cores busy.
#include <algorithm>

#include <fmt/format.h>

#include "graph/passes/pass_util.h"
#include "graph/passes/passes.h"

namespace kpt::graph::passes {

Report fuse_qkv(Graph& g) {
  Uses uses(g);
  std::vector<bool> keep(g.nodes().size(), true);
  std::vector<std::pair<size_t, Node>> inserts;  // new GEMM placed where the q projection was
  int n_attention = 0, n_packed = 0;
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const Node& n = g.nodes()[i];
    if (n.op != OpKind::kAttentionFused) continue;
    ++n_attention;
    int lin[3];
    bool ok = n.attr_int("packed") == 0;
    for (int j = 0; j < 3 && ok; ++j) {
      lin[j] = producer_if(g, n.inputs[static_cast<size_t>(j)], OpKind::kLinear);
      ok = lin[j] >= 0 && uses.only_reader(n.inputs[static_cast<size_t>(j)]) == static_cast<int>(i);
    }
    if (!ok) continue;
    const Node* p[3] = {&g.nodes()[static_cast<size_t>(lin[0])], &g.nodes()[static_cast<size_t>(lin[1])],
                        &g.nodes()[static_cast<size_t>(lin[2])]};
    const int x = p[0]->inputs[0];
    if (p[1]->inputs[0] != x || p[2]->inputs[0] != x) continue;
    std::vector<Tensor> ws, bs;
    int n_bias = 0;
    for (const Node* l : p) n_bias += l->inputs.size() > 2;
    for (const Node* l : p) {
      const Tensor& w = g.value(l->inputs[1]).constant;
      ws.push_back(w);
      if (n_bias > 0) {
        // A missing bias among present ones is a zero bias: exact.
        bs.push_back(l->inputs.size() > 2 ? g.value(l->inputs[2]).constant : Tensor::empty(DType::kF32, {w.dim(0)}));
      }
    }
    const int64_t layer = n.attr_int("layer");
    std::vector<int> in = {x, g.add_weight(fmt::format("qkv_packed.{}.weight", layer), concat_rows(ws))};
    if (n_bias > 0) in.push_back(g.add_weight(fmt::format("qkv_packed.{}.bias", layer), concat_rows(bs)));
    SymShape shape = g.value(x).shape;
    shape.back() = Dim::c(g.value(in[1]).constant.dim(0));
    const int out = g.add_value(fmt::format("qkv.{}", layer), DType::kF32, shape);  // [B, S, (nq + 2 nkv) hd]
    inserts.push_back({static_cast<size_t>(std::min({lin[0], lin[1], lin[2]})), Node{OpKind::kLinear, fmt::format("qkv.{}", layer), in, out, {}}});
    for (int j = 0; j < 3; ++j) keep[static_cast<size_t>(lin[j])] = false;
    Node& a = g.mutable_nodes()[i];
    std::vector<int> ain = {out};
    if (a.inputs.size() > 3) ain.push_back(a.inputs[3]);
    a.inputs = ain;
    a.attrs["packed"] = int64_t{1};
    ++n_packed;
  }
  if (n_packed == 0) return {};
  std::sort(inserts.begin(), inserts.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Node> nodes;
  size_t next = 0;
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    while (next < inserts.size() && inserts[next].first == i) nodes.push_back(inserts[next++].second);
    if (keep[i]) nodes.push_back(g.nodes()[i]);
  }
  g.replace_nodes(std::move(nodes));
  return {fmt::format("packed QKV {}/{} layers (3 GEMMs -> 1)", n_packed, n_attention)};
}

}  // namespace kpt::graph::passes
