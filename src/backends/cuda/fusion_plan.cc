// The fusion plan: see fusion_plan.h.
#include "backends/cuda/fusion_plan.h"

namespace kpt::cuda {

using graph::OpKind;

bool is_unary(OpKind op) {
  return op == OpKind::kGeluErf || op == OpKind::kGeluTanh || op == OpKind::kSilu || op == OpKind::kRelu;
}

Unary unary_of(OpKind op) {
  switch (op) {
    case OpKind::kGeluErf: return Unary::kGeluErf;
    case OpKind::kGeluTanh: return Unary::kGeluTanh;
    case OpKind::kSilu: return Unary::kSilu;
    default: return Unary::kRelu;
  }
}

std::vector<NodePlan> plan_fusions(const graph::Graph& graph, bool enabled, bool bf16) {
  const auto& nodes = graph.nodes();
  std::vector<NodePlan> plan(nodes.size());
  if (!enabled) return plan;
  const size_t n_vals = graph.values().size();
  std::vector<std::vector<int>> readers(n_vals);
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (int v : nodes[i].inputs) readers[static_cast<size_t>(v)].push_back(static_cast<int>(i));
  }
  std::vector<uint8_t> is_output(n_vals, 0);
  for (int v : graph.outputs()) is_output[static_cast<size_t>(v)] = 1;
  // The one node reading v (possibly twice), or -1.
  auto sole_reader = [&](int v) {
    const auto& r = readers[static_cast<size_t>(v)];
    if (is_output[static_cast<size_t>(v)] != 0 || r.empty()) return -1;
    for (int x : r) {
      if (x != r[0]) return -1;
    }
    return r[0];
  };
  auto is_const = [&](int v) { return graph.value(v).constant.defined(); };
  auto consts_from = [&](const graph::Node& n, size_t first) {
    for (size_t j = first; j < n.inputs.size(); ++j) {
      if (!is_const(n.inputs[j])) return false;
    }
    return true;
  };
  std::vector<uint8_t> taken(nodes.size(), 0);
  // Pass 1: act * y, add + norm, RoPE pairs.
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto& n = nodes[i];
    const int self = static_cast<int>(i);
    if (n.op == OpKind::kMul) {
      for (int f : n.inputs) {
        const int p = graph.value(f).producer;
        if (p >= 0 && is_unary(nodes[static_cast<size_t>(p)].op) && sole_reader(f) == self && n.inputs[0] != n.inputs[1]) {
          plan[i].act = p;
          plan[static_cast<size_t>(p)].deferred = true;
          break;
        }
      }
    } else if (n.op == OpKind::kAdd) {
      for (int r : readers[static_cast<size_t>(n.output)]) {
        const auto& m = nodes[static_cast<size_t>(r)];
        if ((m.op == OpKind::kRmsNorm || m.op == OpKind::kLayerNorm) && m.inputs[0] == n.output && consts_from(m, 1) &&
            taken[static_cast<size_t>(r)] == 0) {
          plan[i].norm = r;
          taken[static_cast<size_t>(r)] = 1;
          break;
        }
      }
    } else if (n.op == OpKind::kRope && taken[i] == 0) {
      for (size_t j = i + 1; j < nodes.size(); ++j) {
        const auto& m = nodes[j];
        if (m.op == OpKind::kRope && taken[j] == 0 && m.inputs[1] == n.inputs[1] &&
            m.attr_int("head_dim") == n.attr_int("head_dim") && m.attr_doubles("inv_freq") == n.attr_doubles("inv_freq") &&
            graph.value(m.inputs[0]).producer < self) {
          plan[i].rope_peer = static_cast<int>(j);
          taken[j] = 1;
          break;
        }
      }
    }
  }
  // Pass 1b: a RoPE pair feeding one attention's q and k (k read by nothing else, v computed
  // before the pair) also writes that attention's K/V to the pools.
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (plan[i].rope_peer < 0) continue;
    const int o_i = nodes[i].output, o_j = nodes[static_cast<size_t>(plan[i].rope_peer)].output;
    for (int r : readers[static_cast<size_t>(o_i)]) {
      const auto& a = nodes[static_cast<size_t>(r)];
      if (a.op != OpKind::kAttention || a.inputs.size() < 3) continue;
      const bool q_is_peer = a.inputs[0] == o_j && a.inputs[1] == o_i;
      const bool q_is_self = a.inputs[0] == o_i && a.inputs[1] == o_j;
      if (!q_is_peer && !q_is_self) continue;
      const int k = q_is_peer ? o_i : o_j;
      const int k_node = graph.value(k).producer;
      if (sole_reader(k) != r || graph.value(a.inputs[2]).producer >= static_cast<int>(i) ||
          nodes[static_cast<size_t>(k_node)].attr_int("n_heads") != a.attr_int("n_kv_heads")) {
        continue;
      }
      plan[i].rope_kv = r;
      plan[i].rope_q_is_peer = q_is_peer;
      plan[static_cast<size_t>(r)].kv_by_rope = true;
      break;
    }
  }
  if (!bf16) return plan;
  // Pass 2: GEMV groups (bf16 weights only) and their epilogue activations.
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto& n = nodes[i];
    if (n.op != OpKind::kLinear || taken[i] != 0 || !consts_from(n, 1)) continue;
    std::vector<size_t> members = {i};
    for (size_t j = i + 1; j < nodes.size() && members.size() < static_cast<size_t>(kMaxGemvOuts); ++j) {
      const auto& m = nodes[j];
      if (m.op == OpKind::kLinear && taken[j] == 0 && m.inputs[0] == n.inputs[0] && consts_from(m, 1)) {
        plan[i].gemv_peers.push_back(static_cast<int>(j));
        taken[j] = 1;
        members.push_back(j);
      }
    }
    // The gated MLP: the pair's outputs meet only in act(one) * other.
    if (members.size() == 2) {
      const int o0 = nodes[members[0]].output, o1 = nodes[members[1]].output;
      for (size_t mi = 0; mi < nodes.size(); ++mi) {
        const int a = plan[mi].act;
        if (nodes[mi].op != OpKind::kMul || a < 0) continue;
        const int gate = nodes[static_cast<size_t>(a)].inputs[0];
        const int other = graph.value(nodes[mi].inputs[0]).producer == a ? nodes[mi].inputs[1] : nodes[mi].inputs[0];
        const bool pair = (gate == o0 && other == o1) || (gate == o1 && other == o0);
        if (pair && sole_reader(gate) == a && sole_reader(other) == static_cast<int>(mi)) {
          plan[i].glu_mul = static_cast<int>(mi);
          plan[i].glu_gate_is_peer = gate == o1;
          break;
        }
      }
      if (plan[i].glu_mul >= 0) continue;
    }
    for (size_t mi : members) {
      const int r = sole_reader(nodes[mi].output);
      if (r >= 0 && is_unary(nodes[static_cast<size_t>(r)].op) && !plan[static_cast<size_t>(r)].deferred) {
        plan[mi].gemv_act = r;
      }
    }
  }
  return plan;
}

}  // namespace kpt::cuda
