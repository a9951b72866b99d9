#include "backends/cpu/kernels/gemm_int8_dynamic.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <map>
#include <unordered_map>
#include <vector>

#include <immintrin.h>

#include <fmt/format.h>
#include <oneapi/dnnl/dnnl.hpp>

#include "backends/cpu/kernels/fast_exp.h"
#include "backends/cpu/kernels/fast_kernels.h"
#include "backends/cpu/kernels/kernels.h"
#include "graph/ir.h"
#include "kpt/status.h"

namespace kpt::cpu::fast {

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using graph::OpKind;

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// One row's range -> (scale, zero point). The range is widened to contain 0.
inline void row_params(float lo, float hi, float& scale, int32_t& zp) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  if (hi - lo <= 0.0f) {  // all zeros
    scale = 1.0f;
    zp = 0;
    return;
  }
  scale = (hi - lo) / 255.0f;
  zp = static_cast<int32_t>(std::clamp(std::nearbyint(-lo / scale), 0.0f, 255.0f));
}

__attribute__((target_clones("arch=x86-64-v3", "default"))) void quantize_row(const float* x,
                                                                              int64_t n, uint8_t* q,
                                                                              float* scale,
                                                                              int32_t* zp) {
  float lo = 0, hi = 0;
#pragma omp simd reduction(min : lo) reduction(max : hi)
  for (int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  row_params(lo, hi, *scale, *zp);
  const float inv = 1.0f / *scale, z = static_cast<float>(*zp);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i)
    q[i] = static_cast<uint8_t>(std::clamp(std::nearbyint(x[i] * inv) + z, 0.0f, 255.0f));
}

// 2^(x log2 e) with a degree-6 polynomial for the fraction (relative error ~2e-7), vectorizable
// (std::exp is not without -ffast-math). Valid for x <= ~88.
__attribute__((always_inline)) inline float exp_approx(float x) {
  // min/max, not clamp: clamp's branch stops vectorization
  return exp_poly(std::min(std::max(x, -87.0f), 88.0f));
}

// Vectorizable activations. GELU-erf through erfc's Chebyshev fit (Numerical Recipes erfcc,
// fractional error < 1.2e-7), GELU-tanh and SiLU through exp: the tails and non-AVX2 CPUs.
template <int64_t Act>
__attribute__((always_inline)) inline float act_fast(float v) {
  constexpr auto kAct = static_cast<OpKind>(Act);
  if constexpr (kAct == OpKind::kGeluErf) {
    const float z = std::abs(v) * 0.70710678118654752440f;
    const float t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    const float erfc = t * exp_approx(-z * z + p);  // erfc(|v| / sqrt 2)
    return 0.5f * v * (1.0f + std::copysign(1.0f - erfc, v));
  } else if constexpr (kAct == OpKind::kGeluTanh) {
    const float y = 0.79788456080286535588f * (v + 0.044715f * v * v * v);
    return 0.5f * v * (2.0f - 2.0f / (exp_approx(2.0f * y) + 1.0f));  // 1 + tanh(y)
  } else if constexpr (kAct == OpKind::kSilu) {
    return v / (1.0f + exp_approx(-v));
  } else if constexpr (kAct == OpKind::kRelu) {
    return v > 0.0f ? v : 0.0f;
  } else {
    return v;
  }
}


// AVX2 twins of exp_approx / act_fast (GCC leaves the scalar forms unvectorized in a loop).
__attribute__((target("avx2,fma"))) inline __m256 exp8(__m256 x) {
  return exp_poly8(_mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f)));
}

template <int64_t Act>
__attribute__((target("avx2,fma"))) inline __m256 act8(__m256 v) {
  constexpr auto kAct = static_cast<OpKind>(Act);
  const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
  if constexpr (kAct == OpKind::kGeluErf) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 z =
        _mm256_mul_ps(_mm256_andnot_ps(sign, v), _mm256_set1_ps(0.70710678118654752440f));
    const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(half, z, one));
    __m256 p = _mm256_set1_ps(0.17087277f);
    for (float c : {-0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f, -0.18628806f, 0.09678418f,
                    0.37409196f, 1.00002368f, -1.26551223f}) {
      p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(c));
    }
    const __m256 erfc = _mm256_mul_ps(t, exp8(_mm256_fnmadd_ps(z, z, p)));
    const __m256 erf = _mm256_or_ps(_mm256_sub_ps(one, erfc), _mm256_and_ps(sign, v));
    return _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, erf));
  } else if constexpr (kAct == OpKind::kGeluTanh) {
    const __m256 v3 = _mm256_mul_ps(_mm256_mul_ps(v, v), v);
    const __m256 y = _mm256_mul_ps(_mm256_set1_ps(0.79788456080286535588f),
                                   _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), v3, v));
    const __m256 two = _mm256_set1_ps(2.0f);
    const __m256 q = _mm256_div_ps(two, _mm256_add_ps(exp8(_mm256_mul_ps(two, y)), one));
    return _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_sub_ps(two, q));
  } else if constexpr (kAct == OpKind::kSilu) {
    return _mm256_div_ps(v, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), v))));
  } else if constexpr (kAct == OpKind::kRelu) {
    return _mm256_max_ps(v, _mm256_setzero_ps());
  } else {
    return v;
  }
}

// o [n] holds w_scale[j] * sum_i q[i] wq[j, i] (oneDNN's output scale); turns it into the
// real product x . w_j = s (o - zp w_scale[j] sum_i wq[j, i]), then bias, act, residual.
template <int64_t Act>
__attribute__((target("avx2,fma"))) void epilogue_avx2(float* o, int64_t n, float s, float zp,
                                                       const float* ws, const float* bias,
                                                       const float* res) {
  const __m256 sv = _mm256_set1_ps(s), zv = _mm256_set1_ps(zp);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 c = _mm256_fnmadd_ps(zv, _mm256_loadu_ps(ws + j), _mm256_loadu_ps(o + j));
    __m256 v = act8<Act>(_mm256_fmadd_ps(sv, c, _mm256_loadu_ps(bias + j)));
    if (res != nullptr) v = _mm256_add_ps(v, _mm256_loadu_ps(res + j));
    _mm256_storeu_ps(o + j, v);
  }
  for (; j < n; ++j)
    o[j] = act_fast<Act>(s * (o[j] - zp * ws[j]) + bias[j]) + (res != nullptr ? res[j] : 0.0f);
}

template <int64_t Act>
void epilogue_portable(float* o, int64_t n, float s, float zp, const float* ws, const float* bias,
                       const float* res) {
  for (int64_t j = 0; j < n; ++j)
    o[j] = act_fast<Act>(s * (o[j] - zp * ws[j]) + bias[j]) + (res != nullptr ? res[j] : 0.0f);
}

template <int64_t Act>
void epilogue_act(float* o, int64_t n, float s, float zp, const float* ws, const float* bias,
                  const float* res) {
  if (has_avx2()) {
    epilogue_avx2<Act>(o, n, s, zp, ws, bias, res);
  } else {
    epilogue_portable<Act>(o, n, s, zp, ws, bias, res);
  }
}

void epilogue_row(float* o, int64_t n, float s, float zp, const float* ws, const float* bias,
                  int64_t act, const float* res) {
  switch (
      static_cast<OpKind>(act)) {  // the activation as a template argument: no switch per element
    case OpKind::kGeluErf:
      epilogue_act<static_cast<int64_t>(OpKind::kGeluErf)>(o, n, s, zp, ws, bias, res);
      break;
    case OpKind::kGeluTanh:
      epilogue_act<static_cast<int64_t>(OpKind::kGeluTanh)>(o, n, s, zp, ws, bias, res);
      break;
    case OpKind::kSilu:
      epilogue_act<static_cast<int64_t>(OpKind::kSilu)>(o, n, s, zp, ws, bias, res);
      break;
    case OpKind::kRelu:
      epilogue_act<static_cast<int64_t>(OpKind::kRelu)>(o, n, s, zp, ws, bias, res);
      break;
    default:
      epilogue_act<-1>(o, n, s, zp, ws, bias, res);
      break;
  }
}

// Reference activation (std functions), one value.
float act_reference(int64_t act, float v) {
  switch (static_cast<OpKind>(act)) {
    case OpKind::kGeluErf:
      return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752440f));
    case OpKind::kGeluTanh:
      return 0.5f * v * (1.0f + std::tanh(0.79788456080286535588f * (v + 0.044715f * v * v * v)));
    case OpKind::kSilu:
      return v / (1.0f + std::exp(-v));
    case OpKind::kRelu:
      return v > 0.0f ? v : 0.0f;
    default:
      return v;
  }
}

}  // namespace

void quantize_rows_u8(const float* x, int64_t rows, int64_t n, uint8_t* q, float* scale,
                      int32_t* zp) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) quantize_row(x + r * n, n, q + r * n, scale + r, zp + r);
}

struct OnednnLinearInt8::Impl {
  int64_t n_out = 0, n_in = 0;
  int64_t act = -1;
  bool residual = false;
  const float* w_scale = nullptr;
  std::vector<float> wsum_scaled;  // [n_out] w_scale[o] * sum_i wq[o, i]: the zero-point correction
  std::vector<float> bias_or_zero;  // [n_out] the bias, zeros without one
  dnnl::memory::desc w_md;
  std::vector<int8_t> packed;  // weights in oneDNN's preferred layout
  dnnl::stream stream{cpu_engine()};
  std::map<int64_t, dnnl::matmul> by_rows;
  std::vector<uint8_t> q;        // [rows, n_in] quantized activations, grown on demand
  std::vector<float> row_scale;  // [rows]
  std::vector<int32_t> row_zp;   // [rows]

  dnnl::matmul::primitive_desc make_pd(int64_t rows, const dnnl::memory::desc& wmd) const {
    dnnl::memory::desc src({rows, n_in}, dt::u8, tag::ab);
    dnnl::memory::desc dst({rows, n_out}, dt::f32, tag::ab);
    dnnl::primitive_attr attr;
    attr.set_output_scales(2, {DNNL_RUNTIME_F32_VAL});  // per output channel: w_scale
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wmd, dst), attr, cpu_engine());
  }
};

OnednnLinearInt8::OnednnLinearInt8(const int8_t* wq, const float* w_scale, int64_t n_out,
                                   int64_t n_in, const float* bias, int64_t act, bool residual)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.n_out = n_out;
  m.n_in = n_in;
  m.act = act;
  m.residual = residual;
  m.w_scale = w_scale;
  m.wsum_scaled.resize(static_cast<size_t>(n_out));
  m.bias_or_zero.assign(static_cast<size_t>(n_out), 0.0f);
  if (bias != nullptr) std::copy(bias, bias + n_out, m.bias_or_zero.begin());
  for (int64_t o = 0; o < n_out; ++o) {
    int64_t s = 0;
    for (int64_t i = 0; i < n_in; ++i) {
      const int8_t w = wq[o * n_in + i];
      KPT_CHECK(w >= -kInt8WeightMax && w <= kInt8WeightMax,
                "int8 dynamic linear: weight outside [-63, 63]");
      s += w;
    }
    m.wsum_scaled[static_cast<size_t>(o)] = w_scale[o] * static_cast<float>(s);
  }
  // [n_out, n_in] row-major is the {K, N} matrix in "ba" order.
  dnnl::memory::desc plain({n_in, n_out}, dt::s8, tag::ba);
  dnnl::memory::desc any({n_in, n_out}, dt::s8, tag::any);
  try {
    m.w_md = m.make_pd(128, any).weights_desc();
    m.packed.resize(m.w_md.get_size() + 1);
    dnnl::memory src_mem(plain, cpu_engine(), const_cast<int8_t*>(wq));
    dnnl::memory dst_mem(m.w_md, cpu_engine(), m.packed.data());
    dnnl::reorder(src_mem, dst_mem).execute(m.stream, src_mem, dst_mem);
    m.stream.wait();
  } catch (const dnnl::error& e) {
    throw Error(ErrorCode::kInternal,
                fmt::format("oneDNN int8 matmul weights [{} x {}]: {}", n_out, n_in, e.what()));
  }
}

OnednnLinearInt8::~OnednnLinearInt8() = default;

void OnednnLinearInt8::run(const float* x, int64_t rows, const float* residual, float* out) {
  Impl& m = *impl_;
  KPT_CHECK(!m.residual || residual != nullptr,
            "int8 linear with a residual epilogue got no residual");
  auto it = m.by_rows.find(rows);
  if (it == m.by_rows.end()) {
    try {
      it = m.by_rows.emplace(rows, dnnl::matmul(m.make_pd(rows, m.w_md))).first;
    } catch (const dnnl::error& e) {
      throw Error(ErrorCode::kInternal, fmt::format("oneDNN int8 matmul [{} x {}] x [{} x {}]: {}",
                                                    rows, m.n_in, m.n_in, m.n_out, e.what()));
    }
  }
  const size_t nq = static_cast<size_t>(rows * m.n_in);
  if (m.q.size() < nq) m.q.resize(nq);
  if (m.row_scale.size() < static_cast<size_t>(rows)) {
    m.row_scale.resize(static_cast<size_t>(rows));
    m.row_zp.resize(static_cast<size_t>(rows));
  }
  quantize_rows_u8(x, rows, m.n_in, m.q.data(), m.row_scale.data(), m.row_zp.data());

  auto& eng = cpu_engine();
  dnnl::memory src({{rows, m.n_in}, dt::u8, tag::ab}, eng, m.q.data());
  dnnl::memory wei(m.w_md, eng, m.packed.data());
  dnnl::memory dst({{rows, m.n_out}, dt::f32, tag::ab}, eng, out);
  dnnl::memory scales({{m.n_out}, dt::f32, tag::a}, eng, const_cast<float*>(m.w_scale));
  it->second.execute(m.stream, {{DNNL_ARG_SRC, src},
                                {DNNL_ARG_WEIGHTS, wei},
                                {DNNL_ARG_DST, dst},
                                {DNNL_ARG_ATTR_OUTPUT_SCALES, scales}});
  m.stream.wait();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    epilogue_row(out + r * m.n_out, m.n_out, m.row_scale[static_cast<size_t>(r)],
                 static_cast<float>(m.row_zp[static_cast<size_t>(r)]), m.wsum_scaled.data(),
                 m.bias_or_zero.data(), m.act, m.residual ? residual + r * m.n_out : nullptr);
  }
}

void linear_int8_dynamic_reference(const float* x, int64_t rows, int64_t n_in, const int8_t* wq,
                                   const float* w_scale, const float* bias, int64_t act,
                                   const float* residual, int64_t n_out, float* out) {
  std::vector<uint8_t> q(static_cast<size_t>(n_in));
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n_in;
    float lo = 0, hi = 0;
    for (int64_t i = 0; i < n_in; ++i) {
      lo = std::min(lo, xr[i]);
      hi = std::max(hi, xr[i]);
    }
    float s = 0;
    int32_t zp = 0;
    row_params(lo, hi, s, zp);
    const float inv = 1.0f / s;
    for (int64_t i = 0; i < n_in; ++i) {
      q[static_cast<size_t>(i)] = static_cast<uint8_t>(
          std::clamp(std::nearbyint(xr[i] * inv) + static_cast<float>(zp), 0.0f, 255.0f));
    }
    for (int64_t o = 0; o < n_out; ++o) {
      int64_t acc = 0;  // exact: no int16 intermediate here
      for (int64_t i = 0; i < n_in; ++i) {
        acc += (static_cast<int64_t>(q[static_cast<size_t>(i)]) - zp) * wq[o * n_in + i];
      }
      float v = s * w_scale[o] * static_cast<float>(acc);
      if (bias != nullptr) v += bias[o];
      v = act_reference(act, v);
      if (residual != nullptr) v += residual[r * n_out + o];
      out[r * n_out + o] = v;
    }
  }
}

}  // namespace kpt::cpu::fast
