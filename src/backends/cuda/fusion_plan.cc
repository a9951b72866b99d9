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
