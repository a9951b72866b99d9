// oneDNN linear with fused post-ops vs the reference linear + activation + add.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "backends/cpu/kernels/gemm_onednn.h"
#include "backends/cpu/kernels/kernels.h"
#include "graph/ir.h"

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
