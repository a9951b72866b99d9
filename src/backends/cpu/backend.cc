#include "backends/cpu/backend.h"

#include <array>

#include <fmt/format.h>

#include "backends/cpu/kernels/kernels.h"

namespace kpt::cpu {

using graph::OpKind;

bool supports(const graph::Node& node) {
  switch (node.op) {
    case OpKind::kInput:
    case OpKind::kWeight:
      return false;  // not nodes
    case OpKind::kLinearFused:
    case OpKind::kAttentionFused:
    case OpKind::kAddNorm:
    case OpKind::kGlu:
      return false;  // fused kinds run on the fast executable (fast_backend.cc), never on the oracle
    default:
      return true;
  }
}

namespace {

class CpuExecutable final : public Executable {
 public:
  CpuExecutable(const graph::Graph& graph, const KvLayout& kv);
  std::vector<Tensor> run(const std::map<std::string, Tensor>& inputs, const KvStep& kv) override;
  std::string device() const override { return "cpu"; }

 private:

  const graph::Graph& graph_;
  std::vector<int> last_use_;  // per value: index of the last node reading it, -1 if none
  HostKvStore kv_store_;
};

CpuExecutable::CpuExecutable(const graph::Graph& graph, const KvLayout& kv) : graph_(graph), kv_store_(kv) {
  last_use_.assign(graph.values().size(), -1);
  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    const auto& n = graph.nodes()[i];
    if (!supports(n)) {
      throw Error(ErrorCode::kUnsupported, fmt::format("CPU backend: op {} ({}) is not supported", graph::op_name(n.op), n.name));
    }
    for (int v : n.inputs) last_use_[static_cast<size_t>(v)] = static_cast<int>(i);
  }
  for (int v : graph.outputs()) last_use_[static_cast<size_t>(v)] = static_cast<int>(graph.nodes().size());
}

std::vector<Tensor> CpuExecutable::run(const std::map<std::string, Tensor>& inputs, const KvStep& kv) {
  const AttentionContext ctx = kv_store_.step_context(kv);
  const graph::SymBinding sym = graph::bind_symbols(graph_, inputs);
  std::vector<Tensor> vals(graph_.values().size());
  for (int id : graph_.inputs()) vals[static_cast<size_t>(id)] = inputs.at(graph_.value(id).name);
  for (size_t id = 0; id < graph_.values().size(); ++id) {
    if (graph_.values()[id].constant.defined()) vals[id] = graph_.values()[id].constant;
  }

  const auto& nodes = graph_.nodes();
  for (size_t ni = 0; ni < nodes.size(); ++ni) {
    const auto& n = nodes[ni];
    const auto& outv = graph_.value(n.output);
    Tensor out = Tensor::empty(outv.dtype, graph::concrete_shape(outv.shape, sym));
    auto in = [&](size_t i) -> const Tensor& { return vals[static_cast<size_t>(n.inputs[i])]; };
    auto f = [&](size_t i) { return in(i).data<float>(); };
    float* o = out.data<float>();
    const int64_t numel = out.numel();
    const int64_t last = out.rank() > 0 ? out.dim(-1) : 1;
    switch (n.op) {
      case OpKind::kEmbedding:
        embedding(f(0), in(0).dim(1), in(1).data<int64_t>(), in(1).numel(), o);
        break;
      case OpKind::kAdd: add(f(0), f(1), numel, o); break;
      case OpKind::kMul: mul(f(0), f(1), numel, o); break;
      case OpKind::kGeluErf: gelu_erf(f(0), numel, o); break;
      case OpKind::kGeluTanh: gelu_tanh(f(0), numel, o); break;
      case OpKind::kSilu: silu(f(0), numel, o); break;
      case OpKind::kRelu: relu(f(0), numel, o); break;
      case OpKind::kLayerNorm:
        layer_norm(f(0), f(1), f(2), numel / last, last, n.attr_double("eps"), o);
        break;
      case OpKind::kRmsNorm: rms_norm(f(0), f(1), numel / last, last, n.attr_double("eps"), o); break;
      case OpKind::kLinear:
        linear(f(0), f(1), n.inputs.size() > 2 ? f(2) : nullptr, in(0).numel() / in(0).dim(-1), in(0).dim(-1),
               in(1).dim(0), o);
        break;
      case OpKind::kRope: {
        const auto& inv = n.attr_doubles("inv_freq");
        rope(f(0), in(1).data<int64_t>(), in(1).numel(), n.attr_int("n_heads"), n.attr_int("head_dim"), inv.data(), o);
        break;
      }
      case OpKind::kAttention:
        paged_attention(f(0), f(1), f(2), ctx, n.attr_int("layer"), in(0).dim(0), in(0).dim(1), n.attr_int("n_heads"),
                        n.attr_int("causal") != 0, n.attr_double("scale"), n.attr_int("window"), o);
        break;
      case OpKind::kGatherRows:
        gather_rows(f(0), in(1).data<int64_t>(), in(0).dim(0), in(0).dim(1), in(1).dim(1), in(0).dim(2), o);
        break;
      case OpKind::kInput:
      case OpKind::kWeight:
      case OpKind::kLinearFused:
      case OpKind::kAttentionFused:
      case OpKind::kAddNorm:
      case OpKind::kGlu:
        KPT_CHECK(false, "input/weight/fused op on the reference executable");
    }
    vals[static_cast<size_t>(n.output)] = std::move(out);
    for (int v : n.inputs) {
      if (last_use_[static_cast<size_t>(v)] == static_cast<int>(ni) && !graph_.value(v).constant.defined()) {
        vals[static_cast<size_t>(v)] = Tensor();
      }
    }
  }
  std::vector<Tensor> outs;
  for (int v : graph_.outputs()) outs.push_back(vals[static_cast<size_t>(v)]);
  return outs;
}

}  // namespace

AttentionContext HostKvStore::step_context(const KvStep& step) {
  if (step.capacity_blocks > n_blocks_) {
    const size_t per_block = static_cast<size_t>(kv_.block_size * kv_.n_kv_heads * kv_.head_dim);
    for (size_t l = 0; l < k_.size(); ++l) {
      k_[l].resize(per_block * static_cast<size_t>(step.capacity_blocks));
      v_[l].resize(per_block * static_cast<size_t>(step.capacity_blocks));
    }
    n_blocks_ = step.capacity_blocks;
  }
  AttentionContext ctx;
  ctx.block_size = kv_.block_size;
  ctx.n_kv_heads = kv_.n_kv_heads;
  ctx.head_dim = kv_.head_dim;
  for (size_t l = 0; l < k_.size(); ++l) {
    ctx.k_pool.push_back(k_[l].data());
    ctx.v_pool.push_back(v_[l].data());
  }
  ctx.seqs = step.seqs;
  return ctx;
}

std::unique_ptr<Executable> compile(const graph::Graph& graph, const KvLayout& kv) {
  return std::make_unique<CpuExecutable>(graph, kv);
}

}  // namespace kpt::cpu
