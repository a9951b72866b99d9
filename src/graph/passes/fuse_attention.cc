// rope(q), rope(k), attention(q, k, v) -> one attention_fused node. The fused kernel rotates Q/K
// as it reads them, writes K/V into the paged cache and attends with a tiled online softmax, so
// neither the rotated copies nor the [S, S] score matrix are ever stored.
#include <fmt/format.h>

#include "graph/passes/pass_util.h"
#include "graph/passes/passes.h"

namespace kpt::graph::passes {

Report fuse_attention(Graph& g) {
  Uses uses(g);
  std::vector<bool> keep(g.nodes().size(), true);
  int n_attention = 0, n_fused = 0, n_rope = 0;
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    Node& n = g.mutable_nodes()[i];
    if (n.op != OpKind::kAttention) continue;
    ++n_attention;
    int q = n.inputs[0], k = n.inputs[1];
    const int v = n.inputs[2];
    const int rq = producer_if(g, q, OpKind::kRope), rk = producer_if(g, k, OpKind::kRope);
    // RoPE folds in only when both rotations feed this node alone and share positions/frequencies.
    bool rope = rq >= 0 && rk >= 0 && uses.only_reader(q) == static_cast<int>(i) &&
                uses.only_reader(k) == static_cast<int>(i);
    if (rope) {
      const Node& a = g.nodes()[static_cast<size_t>(rq)];
      const Node& b = g.nodes()[static_cast<size_t>(rk)];
      rope = a.inputs[1] == b.inputs[1] && a.attr_doubles("inv_freq") == b.attr_doubles("inv_freq");
    }
    std::map<std::string, AttrValue> attrs = n.attrs;
    attrs["packed"] = int64_t{0};
    attrs["rope"] = int64_t{rope ? 1 : 0};
    std::vector<int> inputs;
    if (rope) {
      const Node& a = g.nodes()[static_cast<size_t>(rq)];
      attrs["inv_freq"] = a.attr_doubles("inv_freq");
      inputs = {a.inputs[0], g.nodes()[static_cast<size_t>(rk)].inputs[0], v, a.inputs[1]};
      keep[static_cast<size_t>(rq)] = keep[static_cast<size_t>(rk)] = false;
      ++n_rope;
    } else {
      inputs = {q, k, v};
    }
    n.op = OpKind::kAttentionFused;
    n.inputs = inputs;
    n.attrs = attrs;
    ++n_fused;
  }
  if (n_fused == 0) return {};
  drop_nodes(g, keep);
  Report r{fmt::format("fused attention (tiled online softmax, no score matrix) {}/{} layers", n_fused, n_attention)};
  if (n_rope > 0) r.push_back(fmt::format("RoPE folded into the attention Q/K path {}/{} layers", n_rope, n_attention));
  return r;
}

}  // namespace kpt::graph::passes
