#include "backends/cpu/fast_backend.h"

#include <array>
#include <vector>

#include <fmt/format.h>

#include "backends/cpu/kernels/fast_kernels.h"
#include "backends/cpu/kernels/gemm_int8_dynamic.h"
#include "backends/cpu/kernels/gemm_onednn.h"
#include "backends/cpu/kernels/kernels.h"
#include "graph/passes/passes.h"

namespace kpt::cpu {

using graph::OpKind;

namespace {

// Rows at or below which an int8-quantized linear uses the weight-only int8 kernel.
constexpr int64_t kInt8MaxRows = 8;
// Rows for which an fp32 linear uses gemv_f32_rows instead of oneDNN: from 2 (oneDNN's 1-row path
// is as fast) to 16. SmolLM2 decode step, 2 threads, oneDNN vs gemv_f32_rows: 2 rows 51 vs 29 ms,
// 8 rows 75 vs 43, 16 rows 98 vs 79; at 24 rows oneDNN wins (104 vs 128), and beyond.
constexpr int64_t kFewRowsMax = 16;

struct LinearPlan {
  std::unique_ptr<fast::OnednnLinear> gemm;          // f32
  std::unique_ptr<fast::OnednnLinearInt8> gemm_q8;  // int8 compute (encoders at aggressive)
  const int8_t* w_int8 = nullptr;  // [n_out, n_in] when the quantize pass ran
  const float* w_scale = nullptr;  // [n_out, ceil(n_in / kInt8Group)]
  const float* w_f32 = nullptr;    // [n_out, n_in] plain: fp32 GEMMs of 2-8 rows (gemv_f32_rows)
  const float* bias = nullptr;
  int64_t act = -1;
  bool residual = false;
  int64_t n_in = 0, n_out = 0;
};

class FastCpuExecutable final : public Executable {
 public:
  FastCpuExecutable(const graph::Graph& graph, const KvLayout& kv);
  std::vector<Tensor> run(const std::map<std::string, Tensor>& inputs, const KvStep& kv) override;
  std::string device() const override { return "cpu"; }

 private:
  Tensor output_tensor(const graph::Node& n, Shape shape);

  const graph::Graph& graph_;
  std::vector<int> last_use_;
  std::vector<std::unique_ptr<LinearPlan>> linear_;  // per node, null for non-GEMM nodes
  std::vector<std::shared_ptr<Storage>> slots_;      // reused activation buffers (memory_plan)
  HostKvStore kv_store_;
  std::vector<float> i16_scratch_;  // int8-weight models: a prefill's activations, int16-rounded
};

FastCpuExecutable::FastCpuExecutable(const graph::Graph& graph, const KvLayout& kv) : graph_(graph), kv_store_(kv) {
  last_use_.assign(graph.values().size(), -1);
  linear_.resize(graph.nodes().size());
  int64_t n_slots = 0;
  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    const auto& n = graph.nodes()[i];
    if (n.op == OpKind::kInput || n.op == OpKind::kWeight) {
      throw Error(ErrorCode::kUnsupported, fmt::format("fast CPU backend: {} ({}) as a node", graph::op_name(n.op), n.name));
    }
    for (int v : n.inputs) last_use_[static_cast<size_t>(v)] = static_cast<int>(i);
    if (n.attrs.count("slot")) n_slots = std::max(n_slots, n.attr_int("slot") + 1);
    if (n.op != OpKind::kLinear && n.op != OpKind::kLinearFused) continue;
    const Tensor& w = graph.value(n.inputs[1]).constant;  // [out, in]
    KPT_CHECK(w.defined() && w.rank() == 2 && w.dtype() == DType::kF32, "linear weight must be a constant f32 matrix: " + n.name);
    auto p = std::make_unique<LinearPlan>();
    p->n_out = w.dim(0);
    p->n_in = w.dim(1);
    const bool fused = n.op == OpKind::kLinearFused;
    const bool has_bias = fused ? n.attr_int("has_bias") != 0 : n.inputs.size() > 2;
    if (has_bias) p->bias = graph.value(n.inputs[2]).constant.data<float>();
    p->act = fused ? n.attr_int("act") : -1;
    p->residual = fused && n.attr_int("has_residual") != 0;
    if (n.attrs.count("w_int8")) {
      p->w_int8 = graph.value(static_cast<int>(n.attr_int("w_int8"))).constant.data<int8_t>();
      p->w_scale = graph.value(static_cast<int>(n.attr_int("w_scale"))).constant.data<float>();
    }
    if (n.attrs.count("w_q8")) {
      static_assert(graph::passes::kInt8DynamicWeightMax == fast::kInt8WeightMax);
      const Tensor& q = graph.value(static_cast<int>(n.attr_int("w_q8"))).constant;  // [out, in] int8
      const float* qs = graph.value(static_cast<int>(n.attr_int("w_q8_scale"))).constant.data<float>();  // [out]
      p->gemm_q8 = std::make_unique<fast::OnednnLinearInt8>(q.data<int8_t>(), qs, p->n_out, p->n_in, p->bias, p->act,
                                                            p->residual);
    } else if (n.attrs.count("bf16")) {
      try {
        p->gemm = std::make_unique<fast::OnednnLinear>(w.data<float>(), p->n_out, p->n_in, p->bias, p->act,
                                                       p->residual, true);
      } catch (const Error& e) {  // the level marked it, but this oneDNN cannot: fp32, said once
        static bool told = false;
        if (!told) fmt::print(stderr, "warning: {}; running fp32 GEMMs instead\n", e.what());
        told = true;
        p->gemm = std::make_unique<fast::OnednnLinear>(w.data<float>(), p->n_out, p->n_in, p->bias, p->act, p->residual);
      }
    } else {
      p->gemm = std::make_unique<fast::OnednnLinear>(w.data<float>(), p->n_out, p->n_in, p->bias, p->act, p->residual);
      if (p->w_int8 == nullptr) p->w_f32 = w.data<float>();  // the graph keeps the constant alive
    }
    linear_[i] = std::move(p);
  }
  for (int v : graph.outputs()) last_use_[static_cast<size_t>(v)] = static_cast<int>(graph.nodes().size());
  slots_.resize(static_cast<size_t>(n_slots));
}

Tensor FastCpuExecutable::output_tensor(const graph::Node& n, Shape shape) {
  const DType dtype = graph_.value(n.output).dtype;
  auto it = n.attrs.find("slot");
  const int64_t slot = it == n.attrs.end() ? -1 : std::get<int64_t>(it->second);
  if (slot < 0) return Tensor::empty(dtype, std::move(shape));
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  auto& s = slots_[static_cast<size_t>(slot)];
  if (!s || s->size_bytes() < bytes) s = Storage::allocate(bytes);  // grows only on a larger shape
  return Tensor(s, dtype, std::move(shape));
}

std::vector<Tensor> FastCpuExecutable::run(const std::map<std::string, Tensor>& inputs, const KvStep& kv) {
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
    Tensor out = output_tensor(n, graph::concrete_shape(graph_.value(n.output).shape, sym));
    auto in = [&](size_t i) -> const Tensor& { return vals[static_cast<size_t>(n.inputs[i])]; };
    auto f = [&](size_t i) { return in(i).data<float>(); };
    float* o = out.data<float>();
    const int64_t numel = out.numel();
    const int64_t last = out.rank() > 0 ? out.dim(-1) : 1;
    switch (n.op) {
      case OpKind::kEmbedding: embedding(f(0), in(0).dim(1), in(1).data<int64_t>(), in(1).numel(), o); break;
      case OpKind::kAdd: add(f(0), f(1), numel, o); break;
      case OpKind::kMul: mul(f(0), f(1), numel, o); break;
      case OpKind::kGeluErf:
      case OpKind::kGeluTanh:
      case OpKind::kSilu:
      case OpKind::kRelu: fast::activation(static_cast<int64_t>(n.op), f(0), numel, o); break;
      case OpKind::kLayerNorm:
        fast::add_norm(f(0), nullptr, f(1), f(2), numel / last, last, n.attr_double("eps"), false, o);
        break;
      case OpKind::kRmsNorm:
        fast::add_norm(f(0), nullptr, f(1), nullptr, numel / last, last, n.attr_double("eps"), true, o);
        break;
      case OpKind::kAddNorm: {
        const bool rms = n.attr_int("rms") != 0;
        fast::add_norm(f(0), f(1), f(2), rms ? nullptr : f(3), numel / last, last, n.attr_double("eps"), rms, o);
        break;
      }
      case OpKind::kGlu: fast::glu(f(0), numel / last, last, n.attr_int("act"), o); break;
      case OpKind::kLinear:
      case OpKind::kLinearFused: {
        LinearPlan& p = *linear_[ni];
        const int64_t rows = in(0).numel() / p.n_in;
        const float* residual = p.residual ? f(n.inputs.size() - 1) : nullptr;
        if (p.w_int8 != nullptr && rows <= kInt8MaxRows) {
          fast::gemm_int8_weights(f(0), p.w_int8, p.w_scale, graph::passes::kInt8Group, p.bias, residual, p.act,
                                  rows, p.n_in, p.n_out, o);
        } else if (p.w_int8 != nullptr) {
          // Many rows (prefill): fp32 GEMM on the dequantized weights and on the int16 rounding of
          // the activations the decode kernel uses, so KV decode == recompute and batched ==
          // single hold to float reordering.
          i16_scratch_.resize(static_cast<size_t>(rows * p.n_in));
          fast::round_activations_i16(f(0), rows, p.n_in, graph::passes::kInt8Group, i16_scratch_.data());
          p.gemm->run(i16_scratch_.data(), rows, residual, o);
        } else if (p.w_f32 != nullptr && rows >= 2 && rows <= kFewRowsMax) {
          // Batched decode: oneDNN is fast at 1 row, slow at 2-16 (docs/performance.md).
          fast::gemv_f32_rows(f(0), rows, p.w_f32, p.bias, residual, p.act, p.n_in, p.n_out, o);
        } else if (p.gemm_q8) {
          p.gemm_q8->run(f(0), rows, residual, o);
        } else {
          p.gemm->run(f(0), rows, residual, o);
        }
        break;
      }
      case OpKind::kRope: {
        const auto& inv = n.attr_doubles("inv_freq");
        rope(f(0), in(1).data<int64_t>(), in(1).numel(), n.attr_int("n_heads"), n.attr_int("head_dim"), inv.data(), o);
        break;
      }
      case OpKind::kAttention:
      case OpKind::kAttentionFused: {
        const bool fused = n.op == OpKind::kAttentionFused;
        const bool packed = fused && n.attr_int("packed") != 0;
        const bool with_rope = fused && n.attr_int("rope") != 0;
        const int64_t nh = n.attr_int("n_heads"), nkv = n.attr_int("n_kv_heads"), hd = n.attr_int("head_dim");
        fast::AttentionArgs a;
        a.batch = in(0).dim(0);
        a.seq = in(0).dim(1);
        a.n_heads = nh;
        if (packed) {  // [B, S, (nh + 2 nkv) hd]
          a.q = f(0);
          a.k = f(0) + nh * hd;
          a.v = f(0) + (nh + nkv) * hd;
          a.q_stride = a.kv_stride = (nh + 2 * nkv) * hd;
        } else {
          a.q = f(0);
          a.k = f(1);
          a.v = f(2);
          a.q_stride = nh * hd;
          a.kv_stride = nkv * hd;
        }
        if (with_rope) {
          a.positions = in(packed ? 1 : 3).data<int64_t>();
          a.inv_freq = n.attr_doubles("inv_freq").data();
        }
        a.causal = n.attr_int("causal") != 0;
        a.scale = n.attr_double("scale");
        a.window = n.attr_int("window");
        a.layer = n.attr_int("layer");
        a.out = o;
        fast::attention_tiled(a, ctx);
        break;
      }
      case OpKind::kGatherRows:
        gather_rows(f(0), in(1).data<int64_t>(), in(0).dim(0), in(0).dim(1), in(1).dim(1), in(0).dim(2), o);
        break;
      case OpKind::kInput:
      case OpKind::kWeight: KPT_CHECK(false, "input/weight as a node");
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

std::unique_ptr<Executable> compile_fast(const graph::Graph& graph, const KvLayout& kv) {
  return std::make_unique<FastCpuExecutable>(graph, kv);
}

}  // namespace kpt::cpu
