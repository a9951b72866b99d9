// oneDNN linear with fused post-ops vs the reference linear + activation + add.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "backends/cpu/kernels/gemm_int8_dynamic.h"
#include "backends/cpu/kernels/gemm_onednn.h"
#include "backends/cpu/kernels/kernels.h"
#include "graph/ir.h"
#include "test_util.h"

namespace kpt::test {

namespace {
std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}
}  // namespace

TEST(OnednnLinear, MatchesReferenceWithEpilogues) {
  using graph::OpKind;
  const int64_t acts[] = {-1, static_cast<int64_t>(OpKind::kGeluErf), static_cast<int64_t>(OpKind::kGeluTanh),
                          static_cast<int64_t>(OpKind::kSilu), static_cast<int64_t>(OpKind::kRelu)};
  for (int64_t n_in : {1, 7, 67}) {
    for (int64_t n_out : {1, 13, 130}) {
      for (int64_t act : acts) {
        for (int bias_res = 0; bias_res < 4; ++bias_res) {
          const bool has_bias = bias_res & 1, has_res = bias_res & 2;
          auto w = randn(static_cast<size_t>(n_out * n_in), 1);
          auto b = randn(static_cast<size_t>(n_out), 2);
          cpu::fast::OnednnLinear lin(w.data(), n_out, n_in, has_bias ? b.data() : nullptr, act, has_res);
          // Several row counts on one object: primitives are cached per row count.
          for (int64_t rows : {1, 5, 129, 5}) {
            SCOPED_TRACE(::testing::Message() << n_in << "x" << n_out << " act " << act << " bias " << has_bias
                                              << " res " << has_res << " rows " << rows);
            auto x = randn(static_cast<size_t>(rows * n_in), 3);
            auto r = randn(static_cast<size_t>(rows * n_out), 4);
            std::vector<float> ref(static_cast<size_t>(rows * n_out)), tmp(ref.size()), ours(ref.size());
            cpu::linear(x.data(), w.data(), has_bias ? b.data() : nullptr, rows, n_in, n_out, ref.data());
            const int64_t n = static_cast<int64_t>(ref.size());
            switch (static_cast<OpKind>(act)) {
              case OpKind::kGeluErf: cpu::gelu_erf(ref.data(), n, tmp.data()); ref = tmp; break;
              case OpKind::kGeluTanh: cpu::gelu_tanh(ref.data(), n, tmp.data()); ref = tmp; break;
              case OpKind::kSilu: cpu::silu(ref.data(), n, tmp.data()); ref = tmp; break;
              case OpKind::kRelu: cpu::relu(ref.data(), n, tmp.data()); ref = tmp; break;
              default: break;
            }
            if (has_res) {
              cpu::add(ref.data(), r.data(), n, tmp.data());
              ref = tmp;
            }
            lin.run(x.data(), rows, has_res ? r.data() : nullptr, ours.data());
            double m = 0, mr = 0;
            for (size_t i = 0; i < ref.size(); ++i) {
              m = std::max(m, static_cast<double>(std::abs(ours[i] - ref[i])));
              mr = std::max(mr, static_cast<double>(std::abs(ref[i])));
            }
            // oneDNN evaluates erf with a polynomial (its GELU-erf agrees with std::erf to ~3e-5
            // relative near 0); everything else is float32 reordering.
            const double tol = static_cast<OpKind>(act) == OpKind::kGeluErf ? 1e-4 : 2e-6;
            EXPECT_LE(m / std::max(mr, 1e-3), tol);
          }
        }
      }
    }
  }
}

}  // namespace kpt::test

namespace kpt::test {

namespace {
// Per-channel symmetric int8 in [-63, 63], as the quantize_int8_dynamic pass stores weights.
void quantize_weights(const std::vector<float>& w, int64_t n_out, int64_t n_in, std::vector<int8_t>& q,
                      std::vector<float>& scale) {
  q.resize(w.size());
  scale.resize(static_cast<size_t>(n_out));
  for (int64_t o = 0; o < n_out; ++o) {
    float amax = 0;
    for (int64_t i = 0; i < n_in; ++i) amax = std::max(amax, std::abs(w[static_cast<size_t>(o * n_in + i)]));
    const float s = amax > 0 ? amax / cpu::fast::kInt8WeightMax : 1.0f;
    scale[static_cast<size_t>(o)] = s;
    for (int64_t i = 0; i < n_in; ++i) {
      q[static_cast<size_t>(o * n_in + i)] = static_cast<int8_t>(std::nearbyint(w[static_cast<size_t>(o * n_in + i)] / s));
    }
  }
}

double rel_max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0, mr = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, static_cast<double>(std::abs(a[i] - b[i])));
    mr = std::max(mr, static_cast<double>(std::abs(b[i])));
  }
  return m / std::max(mr, 1e-3);
}
}  // namespace

// oneDNN u8s8 + our epilogue vs the scalar twin (exact int32 sums). Inputs include rows pinned at
// the quantization extremes with the largest weights of one sign: where AVX2's int16 pair sums
// would saturate if weights went past 63 (the twin has no int16 step, so clipping would show).
TEST(OnednnLinearInt8, MatchesReferenceTwin) {
  using graph::OpKind;
  const int64_t acts[] = {-1, static_cast<int64_t>(OpKind::kGeluErf), static_cast<int64_t>(OpKind::kGeluTanh),
                          static_cast<int64_t>(OpKind::kSilu), static_cast<int64_t>(OpKind::kRelu)};
  for (int64_t n_in : {1, 7, 67, 384}) {
    for (int64_t n_out : {1, 13, 130}) {
      for (int64_t act : acts) {
        for (int bias_res = 0; bias_res < 4; ++bias_res) {
          const bool has_bias = bias_res & 1, has_res = bias_res & 2;
          auto w = randn(static_cast<size_t>(n_out * n_in), 11);
          for (int64_t i = 0; i < n_in; ++i) w[static_cast<size_t>(i)] = 1.0f;  // channel 0: all +max
          auto b = randn(static_cast<size_t>(n_out), 12);
          std::vector<int8_t> q;
          std::vector<float> sc;
          quantize_weights(w, n_out, n_in, q, sc);
          cpu::fast::OnednnLinearInt8 lin(q.data(), sc.data(), n_out, n_in, has_bias ? b.data() : nullptr, act, has_res);
          for (int64_t rows : {1, 5, 129, 5}) {
            SCOPED_TRACE(::testing::Message() << n_in << "x" << n_out << " act " << act << " bias " << has_bias
                                              << " res " << has_res << " rows " << rows);
            auto x = randn(static_cast<size_t>(rows * n_in), 13);
            // Row 0: all at the top of its range (q = 255 everywhere); last row: all zeros.
            for (int64_t i = 0; i < n_in; ++i) x[static_cast<size_t>(i)] = 3.0f;
            if (rows > 2) std::fill(x.end() - n_in, x.end(), 0.0f);
            auto r = randn(static_cast<size_t>(rows * n_out), 14);
            std::vector<float> ref(static_cast<size_t>(rows * n_out)), ours(ref.size());
            cpu::fast::linear_int8_dynamic_reference(x.data(), rows, n_in, q.data(), sc.data(), has_bias ? b.data() : nullptr,
                                                     act, has_res ? r.data() : nullptr, n_out, ref.data());
            lin.run(x.data(), rows, has_res ? r.data() : nullptr, ours.data());
            // Same integers on both sides; float32 reordering of the scales and the approximate
            // erf/exp of the fast epilogue (~2e-7 relative) remain.
            EXPECT_LE(rel_max_diff(ours, ref), tolerance("int8_compute_vs_twin"));
          }
        }
      }
    }
  }
}

// The quantization error itself: int8 vs the f32 linear on Gaussian data stays at the percent
// level (8-bit activations per token, 7-bit weights per channel), far from a wrong result.
TEST(OnednnLinearInt8, CloseToFloatLinear) {
  const int64_t rows = 64, n_in = 384, n_out = 96;
  auto w = randn(static_cast<size_t>(n_out * n_in), 21);
  auto x = randn(static_cast<size_t>(rows * n_in), 22);
  std::vector<int8_t> q;
  std::vector<float> sc;
  quantize_weights(w, n_out, n_in, q, sc);
  cpu::fast::OnednnLinearInt8 lin(q.data(), sc.data(), n_out, n_in, nullptr, -1, false);
  std::vector<float> ref(static_cast<size_t>(rows * n_out)), ours(ref.size());
  cpu::linear(x.data(), w.data(), nullptr, rows, n_in, n_out, ref.data());
  lin.run(x.data(), rows, nullptr, ours.data());
  const double d = rel_max_diff(ours, ref);
  EXPECT_LE(d, 0.03);
  EXPECT_GT(d, 1e-5);  // it really is quantized
}

// Per-token quantization: a row's result does not depend on the other rows of the call.
TEST(OnednnLinearInt8, RowsIndependentOfBatch) {
  const int64_t n_in = 67, n_out = 130;
  auto w = randn(static_cast<size_t>(n_out * n_in), 31);
  std::vector<int8_t> q;
  std::vector<float> sc;
  quantize_weights(w, n_out, n_in, q, sc);
  cpu::fast::OnednnLinearInt8 lin(q.data(), sc.data(), n_out, n_in, nullptr, -1, false);
  auto x = randn(static_cast<size_t>(9 * n_in), 32);
  for (size_t i = static_cast<size_t>(n_in); i < x.size(); ++i) x[i] *= 100.0f;  // other rows: a much larger range
  std::vector<float> all(static_cast<size_t>(9 * n_out)), one(static_cast<size_t>(n_out));
  lin.run(x.data(), 9, nullptr, all.data());
  lin.run(x.data(), 1, nullptr, one.data());
  for (int64_t j = 0; j < n_out; ++j) EXPECT_NEAR(all[static_cast<size_t>(j)], one[static_cast<size_t>(j)], 1e-5f);
}

}  // namespace kpt::test
