// The fused and decode-shaped kernels of the CUDA backend against their reference twins: the
// bf16 GEMV (with grouped outputs, bias and epilogue activations) against cpu::linear on
// bf16-rounded weights, add+norm / act*mul / the RoPE pair against the CPU kernels of the
// sequence they replace. Shapes are adversarial: k not a multiple of 8 (scalar path), n not a
// multiple of the rows per warp, m = 1..8, one-element rows.
#include <algorithm>
#include <cmath>

#include "backends/cpu/kernels/kernels.h"
#include "backends/cuda/kernels/kernels.h"
#include "gpu_test_util.h"
#include "kpt/tensor.h"

namespace kpt::test {

namespace {

using UnaryCpu = void (*)(const float*, int64_t, float*);

UnaryCpu cpu_unary(cuda::Unary op) {
  switch (op) {
    case cuda::Unary::kGeluErf: return cpu::gelu_erf;
    case cuda::Unary::kGeluTanh: return cpu::gelu_tanh;
    case cuda::Unary::kSilu: return cpu::silu;
    default: return cpu::relu;
  }
}

}  // namespace

TEST(CudaFusedKernels, GemvBf16MatchesReference) {
  KPT_REQUIRE_GPU();
  struct Case {
    int64_t m, k;
    std::vector<int64_t> ns;
  };
  const std::vector<Case> cases = {{1, 1, {1}},          {1, 7, {3, 5}},           {2, 8, {9, 1, 4}},
                                   {3, 33, {257}},       {5, 2048, {2048, 256, 256}}, {8, 2048, {5632, 5632}},
                                   {8, 5632, {2048}},    {4, 1000, {37, 2}},       {7, 64, {31, 33, 1}}};
  uint32_t seed = 100;
  for (const Case& c : cases) {
    for (int variant = 0; variant < 2; ++variant) {  // 0: no bias, no act; 1: bias and an activation
      SCOPED_TRACE(testing::Message() << "m=" << c.m << " k=" << c.k << " outs=" << c.ns.size() << " v" << variant);
      auto x = random_floats(static_cast<size_t>(c.m * c.k), seed++, 2.0f);
      auto dx = to_device(x);
      std::vector<cuda::DeviceBuffer> dws, dbs, douts;
      std::vector<std::vector<float>> refs;
      std::vector<cuda::GemvOut> outs;
      for (size_t i = 0; i < c.ns.size(); ++i) {
        const int64_t n = c.ns[i];
        auto w = random_floats(static_cast<size_t>(n * c.k), seed++);
        auto bias = random_floats(static_cast<size_t>(n), seed++);
        std::vector<uint16_t> wb(w.size());
        for (size_t j = 0; j < w.size(); ++j) {
          wb[j] = f32_to_bf16(w[j]);
          w[j] = bf16_to_f32(wb[j]);  // the reference multiplies by the same rounded weights
        }
        std::vector<float> ref(static_cast<size_t>(c.m * n));
        cpu::linear(x.data(), w.data(), variant == 1 ? bias.data() : nullptr, c.m, c.k, n, ref.data());
        const auto act = static_cast<cuda::Unary>(i % 4);
        if (variant == 1) cpu_unary(act)(ref.data(), static_cast<int64_t>(ref.size()), ref.data());
        dws.push_back(to_device(wb));
        dbs.push_back(to_device(bias));
        douts.push_back(poisoned(ref.size()));
        refs.push_back(std::move(ref));
        cuda::GemvOut g;
        g.w = dws.back().as<uint16_t>();
        g.bias = variant == 1 ? dbs.back().as<float>() : nullptr;
        g.out = douts.back().as<float>();
        g.n = n;
        g.act = variant == 1 ? static_cast<int>(act) : -1;
        outs.push_back(g);
      }
      cuda::gemv_bf16(dx.as<float>(), c.m, c.k, outs.data(), static_cast<int>(outs.size()), nullptr);
      for (size_t i = 0; i < refs.size(); ++i) {
        // fp32 accumulation of the same products in another order.
        EXPECT_LE(rel_diff(to_host<float>(douts[i], refs[i].size()), refs[i]), 1e-5) << "output " << i;
      }
    }
  }
}

// One row's result must not depend on how many rows share the launch (batched == single).
TEST(CudaFusedKernels, GemvRowsIndependentOfBatch) {
  KPT_REQUIRE_GPU();
  const int64_t k = 2048, n = 300;
  auto x = random_floats(static_cast<size_t>(8 * k), 7);
  std::vector<uint16_t> wb(static_cast<size_t>(n * k));
  auto w = random_floats(wb.size(), 8);
  for (size_t j = 0; j < w.size(); ++j) wb[j] = f32_to_bf16(w[j]);
  auto dx = to_device(x), dw = to_device(wb);
  auto all = poisoned(static_cast<size_t>(8 * n)), one = poisoned(static_cast<size_t>(n));
  cuda::GemvOut g;
  g.w = dw.as<uint16_t>();
  g.n = n;
  g.out = all.as<float>();
  cuda::gemv_bf16(dx.as<float>(), 8, k, &g, 1, nullptr);
  const auto all_h = to_host<float>(all, static_cast<size_t>(8 * n));
  for (int64_t r : {0, 5, 7}) {
    g.out = one.as<float>();
    cuda::gemv_bf16(dx.as<float>() + r * k, 1, k, &g, 1, nullptr);
    const auto one_h = to_host<float>(one, static_cast<size_t>(n));
    EXPECT_TRUE(std::equal(one_h.begin(), one_h.end(), all_h.begin() + r * n)) << "row " << r;
  }
}

TEST(CudaFusedKernels, AddNormMatchesReference) {
  KPT_REQUIRE_GPU();
  for (auto [rows, dim] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 1}, {3, 33}, {5, 769}, {2, 4097}, {8, 2048}, {300, 768}, {1, 2048}, {2049, 768}, {2048, 2048}}) {
    SCOPED_TRACE(testing::Message() << rows << "x" << dim);
    auto a = random_floats(static_cast<size_t>(rows * dim), 30, 2.0f), b = random_floats(a.size(), 31);
    for (auto& v : a) v += 5.0f;  // an offset mean stresses the variance
    auto g = random_floats(static_cast<size_t>(dim), 32), beta = random_floats(static_cast<size_t>(dim), 33);
    auto da = to_device(a), db = to_device(b), dg = to_device(g), dbeta = to_device(beta);
    std::vector<float> sum(a.size()), ref(a.size());
    cpu::add(a.data(), b.data(), static_cast<int64_t>(a.size()), sum.data());
    for (int rms = 0; rms < 2; ++rms) {
      auto dsum = poisoned(a.size()), dout = poisoned(a.size());
      if (rms == 1) {
        cuda::add_rms_norm(da.as<float>(), db.as<float>(), dg.as<float>(), rows, dim, 1e-6f, dsum.as<float>(),
                           dout.as<float>(), nullptr);
        cpu::rms_norm(sum.data(), g.data(), rows, dim, 1e-6, ref.data());
      } else {
        cuda::add_layer_norm(da.as<float>(), db.as<float>(), dg.as<float>(), dbeta.as<float>(), rows, dim, 1e-5f,
                             dsum.as<float>(), dout.as<float>(), nullptr);
        cpu::layer_norm(sum.data(), g.data(), beta.data(), rows, dim, 1e-5, ref.data());
      }
      EXPECT_EQ(to_host<float>(dsum, sum.size()), sum) << "sum, rms=" << rms;
      EXPECT_LE(rel_diff(to_host<float>(dout, ref.size()), ref), 2e-5) << "norm, rms=" << rms;
    }
  }
}

TEST(CudaFusedKernels, UnaryMulMatchesReference) {
  KPT_REQUIRE_GPU();
  for (int64_t n : {1, 31, 5632, 8 * 5632 + 3}) {
    SCOPED_TRACE(n);
    auto x = random_floats(static_cast<size_t>(n), 40, 3.0f), y = random_floats(static_cast<size_t>(n), 41);
    auto dx = to_device(x), dy = to_device(y);
    for (int op = 0; op < 4; ++op) {
      auto out = poisoned(static_cast<size_t>(n));
      std::vector<float> act(x.size()), ref(x.size());
      cpu_unary(static_cast<cuda::Unary>(op))(x.data(), n, act.data());
      cpu::mul(act.data(), y.data(), n, ref.data());
      cuda::unary_mul(static_cast<cuda::Unary>(op), dx.as<float>(), dy.as<float>(), n, out.as<float>(), nullptr);
      EXPECT_LE(rel_diff(to_host<float>(out, ref.size()), ref), 2e-6) << "op " << op;
    }
  }
}

TEST(CudaFusedKernels, RopePairEqualsTwoRopes) {
  KPT_REQUIRE_GPU();
  for (auto [tokens, h0, h1, hd] :
       std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{{1, 1, 1, 2}, {7, 6, 2, 40}, {33, 32, 4, 64}, {3, 5, 1, 128}}) {
    SCOPED_TRACE(testing::Message() << tokens << " " << h0 << " " << h1 << " " << hd);
    auto q = random_floats(static_cast<size_t>(tokens * h0 * hd), 50), k = random_floats(static_cast<size_t>(tokens * h1 * hd), 51);
    std::vector<int64_t> pos(static_cast<size_t>(tokens));
    for (int64_t t = 0; t < tokens; ++t) pos[static_cast<size_t>(t)] = (t * 613) % 3000;
    std::vector<double> inv(static_cast<size_t>(hd / 2));
    for (int64_t i = 0; i < hd / 2; ++i) inv[static_cast<size_t>(i)] = std::pow(10000.0, -2.0 * i / hd);
    std::vector<float> inv_f(inv.begin(), inv.end());
    auto dq = to_device(q), dk = to_device(k), dp = to_device(pos), di = to_device(inv_f);
    auto oq = poisoned(q.size()), ok = poisoned(k.size()), rq = poisoned(q.size()), rk = poisoned(k.size());
    cuda::rope_pair(dq.as<float>(), h0, oq.as<float>(), dk.as<float>(), h1, ok.as<float>(), dp.as<int64_t>(), tokens, hd,
                    di.as<float>(), nullptr);
    cuda::rope(dq.as<float>(), dp.as<int64_t>(), tokens, h0, hd, di.as<float>(), rq.as<float>(), nullptr);
    cuda::rope(dk.as<float>(), dp.as<int64_t>(), tokens, h1, hd, di.as<float>(), rk.as<float>(), nullptr);
    EXPECT_EQ(to_host<float>(oq, q.size()), to_host<float>(rq, q.size()));
    EXPECT_EQ(to_host<float>(ok, k.size()), to_host<float>(rk, k.size()));
    std::vector<float> ref(q.size());
    cpu::rope(q.data(), pos.data(), tokens, h0, hd, inv.data(), ref.data());
    EXPECT_LE(rel_diff(to_host<float>(oq, q.size()), ref), 1e-5);
  }
}

// The bf16 copies the norms and activations write for the GEMMs that read them: each element
// equals f32_to_bf16 of the fp32 result of the same launch (bitwise), with or without the fp32
// output, on both norm kernels (warp and block rows) and both elementwise paths (aligned, not).
TEST(CudaFusedKernels, Bf16CopiesEqualRoundedOutputs) {
  KPT_REQUIRE_GPU();
  auto rounded = [](const std::vector<float>& v) {
    std::vector<uint16_t> r(v.size());
    for (size_t i = 0; i < v.size(); ++i) r[i] = f32_to_bf16(v[i]);
    return r;
  };
  auto bf16_buffer = [](size_t n) { return to_device(std::vector<uint16_t>(n, 0x7fc1)); };  // NaN-poisoned
  for (auto [rows, dim] :
       std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 33}, {300, 768}, {9, 2048}, {2, 4097}, {2049, 768}, {2048, 2048}}) {
    SCOPED_TRACE(testing::Message() << rows << "x" << dim);
    const size_t n = static_cast<size_t>(rows * dim);
    auto a = random_floats(n, 60, 2.0f), b = random_floats(n, 61);
    auto g = random_floats(static_cast<size_t>(dim), 62), beta = random_floats(static_cast<size_t>(dim), 63);
    auto da = to_device(a), db = to_device(b), dg = to_device(g), dbeta = to_device(beta);
    for (int kind = 0; kind < 4; ++kind) {  // layer, rms, add+layer, add+rms
      SCOPED_TRACE(kind);
      auto sum = poisoned(n), out = poisoned(n);
      auto o16 = bf16_buffer(n), only16 = bf16_buffer(n);
      for (int with_f32 = 1; with_f32 >= 0; --with_f32) {
        float* o = with_f32 != 0 ? out.as<float>() : nullptr;
        uint16_t* h = with_f32 != 0 ? o16.as<uint16_t>() : only16.as<uint16_t>();
        switch (kind) {
          case 0: cuda::layer_norm(da.as<float>(), dg.as<float>(), dbeta.as<float>(), rows, dim, 1e-5f, o, nullptr, h); break;
          case 1: cuda::rms_norm(da.as<float>(), dg.as<float>(), rows, dim, 1e-6f, o, nullptr, h); break;
          case 2:
            cuda::add_layer_norm(da.as<float>(), db.as<float>(), dg.as<float>(), dbeta.as<float>(), rows, dim, 1e-5f,
                                 sum.as<float>(), o, nullptr, h);
            break;
          default:
            cuda::add_rms_norm(da.as<float>(), db.as<float>(), dg.as<float>(), rows, dim, 1e-6f, sum.as<float>(), o,
                               nullptr, h);
        }
      }
      const auto want = rounded(to_host<float>(out, n));
      EXPECT_EQ(to_host<uint16_t>(o16, n), want);
      EXPECT_EQ(to_host<uint16_t>(only16, n), want) << "bf16 only";
    }
  }
  for (int64_t n : {1, 31, 5632, 8 * 5632 + 3}) {
    for (int offset = 0; offset < 2; ++offset) {  // 1: misaligned pointers take the scalar path
      SCOPED_TRACE(testing::Message() << "n=" << n << " offset=" << offset);
      const size_t total = static_cast<size_t>(n + offset);
      auto x = random_floats(total, 64, 3.0f), y = random_floats(total, 65);
      auto dx = to_device(x), dy = to_device(y);
      for (int op = 0; op < 4; ++op) {
        for (int mul = 0; mul < 2; ++mul) {
          auto out = poisoned(total);
          auto o16 = bf16_buffer(total), only16 = bf16_buffer(total);
          const auto u = static_cast<cuda::Unary>(op);
          const float* xp = dx.as<float>() + offset;
          const float* yp = dy.as<float>() + offset;
          if (mul == 1) {
            cuda::unary_mul(u, xp, yp, n, out.as<float>() + offset, nullptr, o16.as<uint16_t>() + offset);
            cuda::unary_mul(u, xp, yp, n, nullptr, nullptr, only16.as<uint16_t>() + offset);
          } else {
            cuda::unary(u, xp, n, out.as<float>() + offset, nullptr, o16.as<uint16_t>() + offset);
            cuda::unary(u, xp, n, nullptr, nullptr, only16.as<uint16_t>() + offset);
          }
          auto got = to_host<float>(out, total);
          std::vector<float> ref(static_cast<size_t>(n));
          cpu_unary(u)(x.data() + offset, n, ref.data());
          if (mul == 1) cpu::mul(ref.data(), y.data() + offset, n, ref.data());
          const std::vector<float> got_n(got.begin() + offset, got.end());
          EXPECT_LE(rel_diff(got_n, ref), 2e-6) << "op " << op << " mul " << mul;
          const auto want = rounded(got_n);
          const auto h = to_host<uint16_t>(o16, total), h_only = to_host<uint16_t>(only16, total);
          EXPECT_TRUE(std::equal(want.begin(), want.end(), h.begin() + offset)) << "op " << op << " mul " << mul;
          EXPECT_TRUE(std::equal(want.begin(), want.end(), h_only.begin() + offset)) << "bf16 only, op " << op;
        }
      }
    }
  }
}

// The gated-MLP GEMV (gate and up in one pass, act(gate) * up as the epilogue) against the
// sequence it replaces: gemv_bf16 of both, then unary_mul.
TEST(CudaFusedKernels, GemvGluEqualsGemvThenUnaryMul) {
  KPT_REQUIRE_GPU();
  struct Case {
    int64_t m, k, n;
  };
  uint32_t seed = 300;
  for (const Case& c : std::vector<Case>{{1, 7, 5}, {1, 2048, 5632}, {2, 64, 33}, {2, 1000, 7}, {1, 5632, 301},
                                         {2, 8, 1}, {2, 2048, 5632}}) {
    for (int op = 0; op < 4; ++op) {
      SCOPED_TRACE(testing::Message() << "m=" << c.m << " k=" << c.k << " n=" << c.n << " op=" << op);
      auto x = random_floats(static_cast<size_t>(c.m * c.k), seed++, 2.0f);
      std::vector<cuda::DeviceBuffer> keep;
      cuda::GemvOut w[2];
      for (auto& g : w) {
        std::vector<uint16_t> wb(static_cast<size_t>(c.n * c.k));
        auto wf = random_floats(wb.size(), seed++);
        for (size_t j = 0; j < wb.size(); ++j) wb[j] = f32_to_bf16(wf[j]);
        keep.push_back(to_device(wb));
        g.w = keep.back().as<uint16_t>();
        keep.push_back(to_device(random_floats(static_cast<size_t>(c.n), seed++)));
        g.bias = op % 2 == 0 ? keep.back().as<float>() : nullptr;
        keep.push_back(poisoned(static_cast<size_t>(c.m * c.n)));
        g.out = keep.back().as<float>();
        g.n = c.n;
      }
      const size_t mn = static_cast<size_t>(c.m * c.n);
      auto dx = to_device(x);
      auto fused = poisoned(mn), ref = poisoned(mn);
      const auto act = static_cast<cuda::Unary>(op);
      cuda::gemv_bf16_glu(dx.as<float>(), c.m, c.k, w[0], w[1], act, fused.as<float>(), nullptr);
      cuda::gemv_bf16(dx.as<float>(), c.m, c.k, w, 2, nullptr);
      cuda::unary_mul(act, w[0].out, w[1].out, c.m * c.n, ref.as<float>(), nullptr);
      EXPECT_LE(rel_diff(to_host<float>(fused, mn), to_host<float>(ref, mn)), 1e-6);
    }
  }
}

// The RoPE pair with the layer's K/V write in one launch against rope_pair + paged_kv_write:
// the same q, the same pool contents (bitwise), paged block tables out of order, two sequences
// with different past lengths, GQA, head_dim not a multiple of 8.
TEST(CudaFusedKernels, RopePairKvWriteEqualsRopePairThenKvWrite) {
  KPT_REQUIRE_GPU();
  const int64_t batch = 2, seq = 3, n_heads = 6, n_kv = 2, hd = 12, block = 4, n_blocks = 8, max_blocks = 4;
  const int64_t tokens = batch * seq, row = n_kv * hd;
  auto q = random_floats(static_cast<size_t>(tokens * n_heads * hd), 70);
  auto k = random_floats(static_cast<size_t>(tokens * row), 71), v = random_floats(k.size(), 72);
  const std::vector<int32_t> tables = {5, 1, 6, 0, 3, 7, 2, 4}, past = {0, 5};
  std::vector<int64_t> pos;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < seq; ++t) pos.push_back(past[static_cast<size_t>(b)] + t);
  }
  std::vector<float> inv(static_cast<size_t>(hd / 2));
  for (int64_t i = 0; i < hd / 2; ++i) inv[static_cast<size_t>(i)] = static_cast<float>(std::pow(10000.0, -2.0 * i / hd));
  auto dq = to_device(q), dk = to_device(k), dv = to_device(v), dpos = to_device(pos), dinv = to_device(inv);
  auto dtables = to_device(tables), dpast = to_device(past);
  const auto pool0 = random_floats(static_cast<size_t>(n_blocks * block * row), 73);
  cuda::DeviceBuffer pools[2][2] = {{to_device(pool0), to_device(pool0)}, {to_device(pool0), to_device(pool0)}};
  auto q_ref = poisoned(q.size()), k_ref = poisoned(k.size()), q_fused = poisoned(q.size());
  auto args = [&](int which) {
    cuda::PagedAttention p;
    p.k_pool = pools[which][0].as<float>();
    p.v_pool = pools[which][1].as<float>();
    p.block_tables = dtables.as<int32_t>();
    p.max_blocks = max_blocks;
    p.past_len = dpast.as<int32_t>();
    p.batch = batch;
    p.seq = seq;
    p.n_heads = n_heads;
    p.n_kv_heads = n_kv;
    p.head_dim = hd;
    p.block_size = block;
    return p;
  };
  cuda::rope_pair(dq.as<float>(), n_heads, q_ref.as<float>(), dk.as<float>(), n_kv, k_ref.as<float>(), dpos.as<int64_t>(),
                  tokens, hd, dinv.as<float>(), nullptr);
  cuda::paged_kv_write(args(0), k_ref.as<float>(), dv.as<float>(), nullptr);
  cuda::rope_pair_kv_write(dq.as<float>(), n_heads, q_fused.as<float>(), dk.as<float>(), nullptr, dv.as<float>(), args(1),
                           dpos.as<int64_t>(), dinv.as<float>(), nullptr);
  EXPECT_EQ(to_host<float>(q_fused, q.size()), to_host<float>(q_ref, q.size()));
  for (int t = 0; t < 2; ++t) {
    EXPECT_EQ(to_host<float>(pools[1][t], pool0.size()), to_host<float>(pools[0][t], pool0.size())) << (t == 0 ? "K" : "V");
  }
}

}  // namespace kpt::test
