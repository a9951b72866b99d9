// bf16 GEMMs on CPUs that compute bf16 natively (AVX512_BF16 / AMX-BF16): every linear that no
// int8 pass has taken gets the "bf16" attribute, and the fast CPU executable runs it as a oneDNN
// matmul on bf16 weights (converted once at load) and bf16-rounded activations, with fp32
// accumulation, bias and epilogue. levels.cc decides whether the CPU and the user allow it.
#include <fmt/format.h>

#include "graph/passes/passes.h"

namespace kpt::graph::passes {

Report mark_bf16(Graph& g) {
  int n = 0;
  for (Node& node : g.mutable_nodes()) {
    if (node.op != OpKind::kLinear && node.op != OpKind::kLinearFused) continue;
    if (node.attrs.count("w_int8") || node.attrs.count("w_q8")) continue;
    node.attrs["bf16"] = int64_t{1};
    ++n;
  }
  if (n == 0) return {};
  return {fmt::format("bf16 GEMMs (oneDNN, bf16 weights and activations, fp32 accumulation) for {} linears", n)};
}

}  // namespace kpt::graph::passes
