#include "graph/passes/pass_util.h"

#include <cstring>

namespace kpt::graph::passes {

Uses::Uses(const Graph& g) : readers(g.values().size()), is_output(g.values().size(), false) {
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    for (int v : g.nodes()[i].inputs) readers[static_cast<size_t>(v)].push_back(static_cast<int>(i));
  }
  for (int v : g.outputs()) is_output[static_cast<size_t>(v)] = true;
}

int Uses::only_reader(int value) const {
  const auto& r = readers[static_cast<size_t>(value)];
  if (r.size() != 1 || is_output[static_cast<size_t>(value)]) return -1;
  return r[0];
}

int producer_if(const Graph& g, int value, OpKind op) {
  const int p = g.value(value).producer;
  if (p < 0 || g.value(value).constant.defined()) return -1;
  return g.nodes()[static_cast<size_t>(p)].op == op ? p : -1;
}

bool is_activation(OpKind op) {
  return op == OpKind::kGeluErf || op == OpKind::kGeluTanh || op == OpKind::kSilu || op == OpKind::kRelu;
}

Tensor concat_rows(const std::vector<Tensor>& parts) {
  KPT_CHECK(!parts.empty(), "concat_rows of nothing");
  const int64_t cols = parts[0].rank() == 2 ? parts[0].dim(1) : 1;
  int64_t rows = 0;
  for (const auto& p : parts) {
    KPT_CHECK(p.dtype() == DType::kF32 && (p.rank() == 2 ? p.dim(1) : 1) == cols, "concat_rows: mismatched parts");
    rows += p.rank() == 2 ? p.dim(0) : p.numel();
  }
  Tensor out = Tensor::empty(DType::kF32, parts[0].rank() == 2 ? Shape{rows, cols} : Shape{rows});
  char* dst = static_cast<char*>(out.raw());
  for (const auto& p : parts) {
    std::memcpy(dst, p.raw(), p.size_bytes());
    dst += p.size_bytes();
  }
  return out;
}

void drop_nodes(Graph& g, const std::vector<bool>& keep) {
  std::vector<Node> kept;
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    if (keep[i]) kept.push_back(g.nodes()[i]);
  }
  g.replace_nodes(std::move(kept));
}

}  // namespace kpt::graph::passes
