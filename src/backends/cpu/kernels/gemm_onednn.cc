#include "backends/cpu/kernels/gemm_onednn.h"

#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <oneapi/dnnl/dnnl.hpp>

#include "graph/ir.h"
#include "kpt/status.h"
#include "kpt/tensor.h"

namespace kpt::cpu::fast {

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::algorithm eltwise_alg(int64_t act) {
  switch (static_cast<graph::OpKind>(act)) {
    case graph::OpKind::kGeluErf: return dnnl::algorithm::eltwise_gelu_erf;
    case graph::OpKind::kGeluTanh: return dnnl::algorithm::eltwise_gelu_tanh;
    case graph::OpKind::kSilu: return dnnl::algorithm::eltwise_swish;  // x * sigmoid(alpha x), alpha = 1
    case graph::OpKind::kRelu: return dnnl::algorithm::eltwise_relu;
    default: break;
  }
  KPT_CHECK(false, fmt::format("no oneDNN eltwise for activation code {}", act));
  return dnnl::algorithm::undef;
}

// Row count used to ask oneDNN for its preferred weight layout.
constexpr int64_t kProbeRows = 128;

// The call's activations to bf16 (kpt::f32_to_bf16: round to nearest even), vectorized.
void f32_to_bf16_rne(const float* x, int64_t n, uint16_t* out) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) out[i] = f32_to_bf16(x[i]);
}

}  // namespace

struct OnednnLinear::Impl {
  int64_t n_out = 0, n_in = 0;
  int64_t act = -1;
  bool residual = false;
  bool repacked = false;
  bool bf16 = false;
  std::vector<uint16_t> x16;              // bf16: the call's activations
  dnnl::memory::desc w_md;                // the layout the weights are kept in
  std::vector<float> packed;              // owned copy when repacked
  const float* w = nullptr;               // weights in w_md
  const float* bias = nullptr;
  dnnl::stream stream{cpu_engine()};
  struct Prim {
    dnnl::matmul prim;
  };
  std::map<int64_t, Prim> by_rows;

  dnnl::matmul::primitive_desc make_pd(int64_t rows, const dnnl::memory::desc& wmd) const {
    dnnl::memory::desc src({rows, n_in}, bf16 ? dt::bf16 : dt::f32, tag::ab);
    dnnl::memory::desc dst({rows, n_out}, dt::f32, tag::ab);
    dnnl::memory::desc bmd({1, n_out}, dt::f32, tag::ab);
    dnnl::post_ops po;
    // alpha: swish's beta (1 for SiLU); relu's negative slope (0); unused by the GELUs.
    const float alpha = static_cast<graph::OpKind>(act) == graph::OpKind::kSilu ? 1.0f : 0.0f;
#if DNNL_VERSION_MAJOR >= 3  // 3.x dropped the per-post-op scale and op descriptors (Ubuntu 24.04 ships 3.x)
    if (act >= 0) po.append_eltwise(eltwise_alg(act), alpha, 0.0f);
#else
    if (act >= 0) po.append_eltwise(1.0f, eltwise_alg(act), alpha, 0.0f);
#endif
    if (residual) po.append_binary(dnnl::algorithm::binary_add, dst);
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);
#if DNNL_VERSION_MAJOR >= 3
    return bias != nullptr ? dnnl::matmul::primitive_desc(cpu_engine(), src, wmd, bmd, dst, attr)
                           : dnnl::matmul::primitive_desc(cpu_engine(), src, wmd, dst, attr);
#else
    dnnl::matmul::desc d = bias != nullptr ? dnnl::matmul::desc(src, wmd, bmd, dst) : dnnl::matmul::desc(src, wmd, dst);
    return dnnl::matmul::primitive_desc(d, attr, cpu_engine());
#endif
  }
};

OnednnLinear::OnednnLinear(const float* w, int64_t n_out, int64_t n_in, const float* bias, int64_t act, bool residual,
                           bool bf16)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.n_out = n_out;
  m.n_in = n_in;
  m.act = act;
  m.residual = residual;
  m.bias = bias;
  m.bf16 = bf16;
  // [n_out, n_in] row-major is the {K, N} matrix in "ba" order: no transpose copy needed.
  dnnl::memory::desc plain({n_in, n_out}, dt::f32, tag::ba);
  dnnl::memory::desc any({n_in, n_out}, bf16 ? dt::bf16 : dt::f32, tag::any);
  dnnl::memory::desc preferred;
  try {
    preferred = m.make_pd(kProbeRows, any).weights_desc();
  } catch (const dnnl::error& e) {
    if (!bf16) throw;
    throw Error(ErrorCode::kUnsupported, fmt::format("oneDNN has no bf16 matmul for this CPU: {}", e.what()));
  }
  if (preferred == plain) {
    m.w_md = plain;
    m.w = w;
    return;
  }
  // Pre-pack once: reorder into the implementation's layout, then every row count uses it.
  m.w_md = preferred;
  m.packed.resize(preferred.get_size() / sizeof(float) + 1);
  dnnl::memory src_mem(plain, cpu_engine(), const_cast<float*>(w));
  dnnl::memory dst_mem(preferred, cpu_engine(), m.packed.data());
  dnnl::reorder(src_mem, dst_mem).execute(m.stream, src_mem, dst_mem);
  m.stream.wait();
  m.w = m.packed.data();
  m.repacked = true;
}

OnednnLinear::~OnednnLinear() = default;

bool OnednnLinear::repacked() const { return impl_->repacked; }
bool OnednnLinear::bf16() const { return impl_->bf16; }

void OnednnLinear::run(const float* x, int64_t rows, const float* residual, float* out) {
  Impl& m = *impl_;
  auto it = m.by_rows.find(rows);
  if (it == m.by_rows.end()) {
    dnnl::matmul::primitive_desc pd;
    try {
      pd = m.make_pd(rows, m.w_md);
    } catch (const dnnl::error& e) {
      throw Error(ErrorCode::kInternal, fmt::format("oneDNN matmul [{} x {}] x [{} x {}]: {}", rows, m.n_in, m.n_in,
                                                    m.n_out, e.what()));
    }
    it = m.by_rows.emplace(rows, Impl::Prim{dnnl::matmul(pd)}).first;
  }
  auto& eng = cpu_engine();
  void* src_data = const_cast<float*>(x);
  if (m.bf16) {
    m.x16.resize(static_cast<size_t>(rows * m.n_in));
    f32_to_bf16_rne(x, rows * m.n_in, m.x16.data());
    src_data = m.x16.data();
  }
  dnnl::memory src({{rows, m.n_in}, m.bf16 ? dt::bf16 : dt::f32, tag::ab}, eng, src_data);
  dnnl::memory wei(m.w_md, eng, const_cast<float*>(m.w));
  dnnl::memory dst({{rows, m.n_out}, dt::f32, tag::ab}, eng, out);
  std::unordered_map<int, dnnl::memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}};
  if (m.bias != nullptr) {
    args.emplace(DNNL_ARG_BIAS, dnnl::memory({{1, m.n_out}, dt::f32, tag::ab}, eng, const_cast<float*>(m.bias)));
  }
  if (m.residual) {
    KPT_CHECK(residual != nullptr, "linear with a residual epilogue got no residual");
    const int idx = m.act >= 0 ? 1 : 0;  // post-op index of the binary add
    args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx) | DNNL_ARG_SRC_1,
                 dnnl::memory({{rows, m.n_out}, dt::f32, tag::ab}, eng, const_cast<float*>(residual)));
  }
  it->second.prim.execute(m.stream, args);
  m.stream.wait();
}

}  // namespace kpt::cpu::fast
