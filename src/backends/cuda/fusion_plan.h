// The fusion plan of the CUDA backend: which launches of the unfused graph merge (see the top of
// backend.cc). Decided once per executable from the graph's structure alone.
#pragma once

#include <vector>

#include "backends/cuda/kernels/kernels.h"
#include "graph/ir.h"

namespace kpt::cuda {

// What a node does beyond itself (node indices; -1: nothing).
struct NodePlan {
  std::vector<int> gemv_peers;  // kLinear: later linears on the same input, in the same launch
  int gemv_act = -1;            // kLinear: unary node applied in the GEMV epilogue (m <= 8)
  int glu_mul = -1;             // kLinear leading a GEMV pair: the kMul act(gate) * up of the pair,
                                // computed in the GEMV's epilogue (m <= 8; gemv_bf16_glu)
  bool glu_gate_is_peer = false;  // the gate is gemv_peers[0] (else this node)
  int norm = -1;                // kAdd: norm node fused behind the add
  int rope_peer = -1;           // kRope: the second RoPE of the pair (same positions)
  int rope_kv = -1;             // kRope with a peer: the attention node whose K/V write this launch does
  bool rope_q_is_peer = false;  //   (the peer rotates q, this node k)
  bool kv_by_rope = false;      // kAttention: its K/V were written by the RoPE pair's launch
  int act = -1;                 // kMul: unary node producing one factor, computed here
  bool deferred = false;        // unary computed by the kMul that consumes it
};

bool is_unary(graph::OpKind op);
Unary unary_of(graph::OpKind op);  // for is_unary kinds

// Conditions are structural only (who reads what, constants, producer order); whether a GEMV group
// runs as one GEMV launch is decided per run by the row count. `enabled` false: no fusion at all;
// `bf16` false: no GEMV groups (fp32 weights go to cuBLASLt).
std::vector<NodePlan> plan_fusions(const graph::Graph& graph, bool enabled, bool bf16);

}  // namespace kpt::cuda
