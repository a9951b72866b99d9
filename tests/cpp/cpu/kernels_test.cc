// Fast kernels vs their reference twins on adversarial shapes: sizes that are not multiples of
// the vector width, length 1, GQA groups of 3, padding, sliding windows, cache blocks that are
// not contiguous, and prefill followed by decode.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "backends/cpu/kernels/fast_kernels.h"
#include "backends/cpu/kernels/gemm_onednn.h"
#include "backends/cpu/kernels/kernels.h"
#include "graph/ir.h"
#include "optimize/levels.h"

namespace kpt::test {

namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0, r = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, static_cast<double>(std::abs(a[i] - b[i])));
    r = std::max(r, static_cast<double>(std::abs(b[i])));
  }
  return r > 0 ? m / r : m;
}

}  // namespace

TEST(FastKernels, AddNormMatchesReference) {
  for (int64_t dim : {1, 7, 8, 33, 771}) {
    for (int64_t rows : {1, 5}) {
      for (bool rms : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "dim " << dim << " rows " << rows << " rms " << rms);
        auto a = randn(static_cast<size_t>(rows * dim), 1, 3.0f), b = randn(static_cast<size_t>(rows * dim), 2);
        auto gamma = randn(static_cast<size_t>(dim), 3), beta = randn(static_cast<size_t>(dim), 4);
        std::vector<float> sum(a.size()), ref(a.size()), ours(a.size());
        cpu::add(a.data(), b.data(), static_cast<int64_t>(a.size()), sum.data());
        if (rms) {
          cpu::rms_norm(sum.data(), gamma.data(), rows, dim, 1e-6, ref.data());
        } else {
          cpu::layer_norm(sum.data(), gamma.data(), beta.data(), rows, dim, 1e-5, ref.data());
        }
        cpu::fast::add_norm(a.data(), b.data(), gamma.data(), beta.data(), rows, dim, rms ? 1e-6 : 1e-5, rms, ours.data());
        EXPECT_LE(rel_diff(ours, ref), 1e-5);
        // Without the residual it is the plain norm.
        cpu::fast::add_norm(sum.data(), nullptr, gamma.data(), beta.data(), rows, dim, rms ? 1e-6 : 1e-5, rms, ours.data());
        EXPECT_LE(rel_diff(ours, ref), 1e-5);
      }
    }
  }
}

TEST(FastKernels, GluMatchesReference) {
  using graph::OpKind;
  for (int64_t f : {1, 9, 64, 1537}) {
    for (OpKind act : {OpKind::kSilu, OpKind::kGeluErf, OpKind::kGeluTanh, OpKind::kRelu}) {
      const int64_t rows = 3;
      auto x = randn(static_cast<size_t>(rows * 2 * f), 5, 2.0f);
      std::vector<float> ref(static_cast<size_t>(rows * f)), ours(ref.size());
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<float> g(x.begin() + r * 2 * f, x.begin() + r * 2 * f + f), ga(static_cast<size_t>(f));
        switch (act) {
          case OpKind::kSilu: cpu::silu(g.data(), f, ga.data()); break;
          case OpKind::kGeluErf: cpu::gelu_erf(g.data(), f, ga.data()); break;
          case OpKind::kGeluTanh: cpu::gelu_tanh(g.data(), f, ga.data()); break;
          default: cpu::relu(g.data(), f, ga.data()); break;
        }
        cpu::mul(ga.data(), x.data() + r * 2 * f + f, f, ref.data() + r * f);
      }
      cpu::fast::glu(x.data(), rows, f, static_cast<int64_t>(act), ours.data());
      EXPECT_LE(rel_diff(ours, ref), 1e-6) << "f " << f << " act " << graph::op_name(act);
    }
  }
}

struct AttnCase {
  int64_t batch, n_heads, n_kv, hd, block, prefill, decode;
  bool causal, rope, padding;
  int64_t window;
};

// Named output for test listings (gtest would otherwise print the struct's bytes, padding included).
void PrintTo(const AttnCase& c, std::ostream* os) {
  *os << "b" << c.batch << " h" << c.n_heads << "/" << c.n_kv << " d" << c.hd << " blk" << c.block << " p"
      << c.prefill << " d" << c.decode << (c.causal ? " causal" : "") << (c.rope ? " rope" : "")
      << (c.padding ? " pad" : "") << " win" << c.window;
}

class FastAttention : public ::testing::TestWithParam<AttnCase> {};

// Runs the reference (rope kernel + paged_attention) and the fused tiled kernel through a prefill
// of `prefill` tokens and then `decode` single-token steps, each on its own cache, and compares
// every step's output.
TEST_P(FastAttention, MatchesReference) {
  const AttnCase c = GetParam();
  const int64_t total = c.prefill + c.decode;
  const int64_t n_blocks_seq = (total + c.block - 1) / c.block;
  const int64_t n_blocks = n_blocks_seq * c.batch;
  // Physical blocks handed out in a scrambled order: block tables are not contiguous.
  std::vector<int32_t> phys(static_cast<size_t>(n_blocks));
  for (int64_t i = 0; i < n_blocks; ++i) phys[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7 + 3) % n_blocks);
  if (n_blocks % 7 == 0) std::reverse(phys.begin(), phys.end());
  const size_t pool = static_cast<size_t>(n_blocks * c.block * c.n_kv * c.hd);
  std::vector<float> kr(pool), vr(pool), kf(pool), vf(pool);
  std::vector<std::vector<uint8_t>> valid(static_cast<size_t>(c.batch), std::vector<uint8_t>(static_cast<size_t>(total), 1));
  if (c.padding) {
    for (int64_t b = 0; b < c.batch; ++b) {
      for (int64_t t = 0; t < std::min<int64_t>(b + 1, c.prefill - 1); ++t) valid[static_cast<size_t>(b)][static_cast<size_t>(t)] = 0;
    }
  }
  std::vector<double> inv_freq(static_cast<size_t>(c.hd / 2));
  for (int64_t i = 0; i < c.hd / 2; ++i) inv_freq[static_cast<size_t>(i)] = std::pow(10000.0, -2.0 * static_cast<double>(i) / static_cast<double>(c.hd));
  auto ctx_for = [&](std::vector<float>& k, std::vector<float>& v, int64_t past) {
    cpu::AttentionContext ctx;
    ctx.block_size = c.block;
    ctx.n_kv_heads = c.n_kv;
    ctx.head_dim = c.hd;
    ctx.k_pool = {k.data()};
    ctx.v_pool = {v.data()};
    for (int64_t b = 0; b < c.batch; ++b) {
      SequenceView s;
      s.block_table = phys.data() + b * n_blocks_seq;
      s.n_blocks = n_blocks_seq;
      s.past_len = past;
      s.key_valid = valid[static_cast<size_t>(b)].data();
      ctx.seqs.push_back(s);
    }
    return ctx;
  };
  int64_t past = 0;
  uint32_t seed = 10;
  for (int64_t step = 0; step <= c.decode; ++step) {
    const int64_t seq = step == 0 ? c.prefill : 1;
    SCOPED_TRACE(::testing::Message() << "step " << step << " seq " << seq);
    const int64_t tokens = c.batch * seq;
    auto q = randn(static_cast<size_t>(tokens * c.n_heads * c.hd), seed++);
    auto k = randn(static_cast<size_t>(tokens * c.n_kv * c.hd), seed++);
    auto v = randn(static_cast<size_t>(tokens * c.n_kv * c.hd), seed++);
    std::vector<int64_t> pos(static_cast<size_t>(tokens));
    for (int64_t i = 0; i < tokens; ++i) pos[static_cast<size_t>(i)] = past + i % seq + 3 * (i / seq);
    std::vector<float> ref(q.size()), ours(q.size());
    {
      std::vector<float> qr = q, kr2 = k;
      if (c.rope) {
        cpu::rope(q.data(), pos.data(), tokens, c.n_heads, c.hd, inv_freq.data(), qr.data());
        cpu::rope(k.data(), pos.data(), tokens, c.n_kv, c.hd, inv_freq.data(), kr2.data());
      }
      auto ctx = ctx_for(kr, vr, past);
      cpu::paged_attention(qr.data(), kr2.data(), v.data(), ctx, 0, c.batch, seq, c.n_heads, c.causal,
                           1.0 / std::sqrt(static_cast<double>(c.hd)), c.window, ref.data());
    }
    {
      auto ctx = ctx_for(kf, vf, past);
      cpu::fast::AttentionArgs a;
      a.q = q.data();
      a.k = k.data();
      a.v = v.data();
      a.q_stride = c.n_heads * c.hd;
      a.kv_stride = c.n_kv * c.hd;
      a.positions = c.rope ? pos.data() : nullptr;
      a.inv_freq = inv_freq.data();
      a.batch = c.batch;
      a.seq = seq;
      a.n_heads = c.n_heads;
      a.causal = c.causal;
      a.scale = 1.0 / std::sqrt(static_cast<double>(c.hd));
      a.window = c.window;
      a.out = ours.data();
      cpu::fast::attention_tiled(a, ctx);
    }
    // The reference sums in double with std::exp; the tiled kernel sums in float (scores, then
    // p * v over up to 130 keys) with a polynomial exp (~2e-7): a few 1e-6 relative is float32.
    EXPECT_LE(rel_diff(ours, ref), 1e-5);
    past += seq;
    if (!c.causal) break;  // encoders have no decode
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, FastAttention,
    ::testing::Values(AttnCase{1, 1, 1, 8, 16, 1, 3, true, false, false, 0},      // length 1 prefill
                      AttnCase{2, 6, 2, 6, 16, 17, 4, true, true, true, 0},       // GQA 3, hd 6, padding
                      AttnCase{3, 9, 3, 64, 5, 40, 6, true, true, true, 0},       // odd block size, 3 tiles
                      AttnCase{1, 4, 4, 12, 16, 33, 5, true, false, false, 7},    // sliding window
                      AttnCase{2, 4, 1, 32, 16, 20, 2, true, true, false, 0},     // MQA
                      AttnCase{2, 3, 3, 10, 16, 19, 0, false, false, true, 0},    // encoder, padding
                      AttnCase{1, 12, 12, 64, 16, 128, 2, true, false, false, 0}, // gpt2-like
                      // Dense prefill path (empty cache, hd % 8 == 0): MiniLM-like encoder with
                      // padding; key counts that are not multiples of 8 or 32; GQA + RoPE + padding
                      // causal prefill, then tiled decode on the cache it wrote; hd 40 (w < 32 chunk).
                      AttnCase{2, 12, 12, 32, 16, 128, 0, false, false, true, 0},
                      AttnCase{3, 2, 2, 8, 16, 37, 0, false, false, true, 0},
                      AttnCase{2, 6, 2, 16, 5, 45, 3, true, true, true, 0},
                      AttnCase{1, 3, 1, 40, 16, 9, 2, true, true, false, 0},
                      AttnCase{1, 2, 2, 8, 16, 1, 0, false, false, false, 0}
                      ));

TEST(FastKernels, Int8WeightGemmMatchesDequantizedReference) {
  using graph::OpKind;
  for (int64_t group : {32, 16}) {  // 32: the AVX2 kernel; 16: the portable twin
    for (int64_t n_in : {1, 7, 64, 577}) {
      for (int64_t rows : {1, 3, 8}) {
        const int64_t n_out = 13;
        auto x = randn(static_cast<size_t>(rows * n_in), 20);
        if (n_in >= 64) x[5] = 40.0f;  // an outlier: its group gets a coarse scale, the others do not
        std::vector<int8_t> q(static_cast<size_t>(n_out * n_in));
        std::mt19937 gen(21);
        for (auto& e : q) e = static_cast<int8_t>(static_cast<int>(gen() % 255) - 127);
        const int64_t n_groups = (n_in + group - 1) / group;  // n_in 577: a partial last group
        auto scale = randn(static_cast<size_t>(n_out * n_groups), 22, 0.01f);
        // A NaN right after the last scale: a read past the end (0 * NaN in an empty tail) poisons
        // the output instead of passing silently with whatever memory follows.
        scale.push_back(std::numeric_limits<float>::quiet_NaN());
        auto bias = randn(static_cast<size_t>(n_out), 23), res = randn(static_cast<size_t>(rows * n_out), 24);
        std::vector<float> w(q.size());
        for (int64_t o = 0; o < n_out; ++o) {
          for (int64_t i = 0; i < n_in; ++i) {
            w[static_cast<size_t>(o * n_in + i)] = scale[static_cast<size_t>(o * n_groups + i / group)] * q[static_cast<size_t>(o * n_in + i)];
          }
        }
        // The twin: fp32 linear on the dequantized weights and on x's int16 rounding; and the
        // fp32 x itself, which that rounding (2^-16 relative per group) must stay close to.
        const int64_t n_groups_x = n_groups;
        std::vector<int16_t> xi(x.size());
        std::vector<float> xsc(static_cast<size_t>(rows * n_groups_x)), xr(x.size());
        cpu::fast::quantize_activations_i16(x.data(), rows, n_in, group, xi.data(), xsc.data());
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t c = 0; c < n_in; ++c) {
            const size_t i = static_cast<size_t>(r * n_in + c);
            xr[i] = xsc[static_cast<size_t>(r * n_groups_x + c / group)] * static_cast<float>(xi[i]);
          }
        }
        auto reference = [&](const std::vector<float>& xin) {
          std::vector<float> lin(static_cast<size_t>(rows * n_out)), act(lin.size()), ref(lin.size());
          cpu::linear(xin.data(), w.data(), bias.data(), rows, n_in, n_out, lin.data());
          cpu::silu(lin.data(), static_cast<int64_t>(lin.size()), act.data());
          cpu::add(act.data(), res.data(), static_cast<int64_t>(lin.size()), ref.data());
          return ref;
        };
        std::vector<float> ours(static_cast<size_t>(rows * n_out));
        cpu::fast::gemm_int8_weights(x.data(), q.data(), scale.data(), group, bias.data(), res.data(),
                                     static_cast<int64_t>(OpKind::kSilu), rows, n_in, n_out, ours.data());
        for (float v : ours) ASSERT_TRUE(std::isfinite(v)) << "n_in " << n_in << " rows " << rows;
        EXPECT_LE(rel_diff(ours, reference(xr)), 1e-5) << "group " << group << " n_in " << n_in << " rows " << rows;
        EXPECT_LE(rel_diff(ours, reference(x)), 1e-4) << "group " << group << " n_in " << n_in << " rows " << rows;
      }
    }
  }
}

// The fp32 few-row GEMM (batched decode) against the reference linear + epilogue, every row count
// it serves, an input length with a tail (not a multiple of 8), and batched == single bitwise.
TEST(FastKernels, FewRowGemvMatchesReference) {
  using graph::OpKind;
  for (int64_t n_in : {5, 64, 577}) {
    const int64_t n_out = 19;
    auto w = randn(static_cast<size_t>(n_out * n_in), 50, 0.1f);
    auto bias = randn(static_cast<size_t>(n_out), 51);
    for (int64_t rows = 1; rows <= 17; ++rows) {  // chunks of 8 and a partial chunk
      auto x = randn(static_cast<size_t>(rows * n_in), 52 + static_cast<uint32_t>(rows));
      auto res = randn(static_cast<size_t>(rows * n_out), 53);
      std::vector<float> lin(static_cast<size_t>(rows * n_out)), act(lin.size()), ref(lin.size()), ours(lin.size());
      cpu::linear(x.data(), w.data(), bias.data(), rows, n_in, n_out, lin.data());
      cpu::gelu_erf(lin.data(), static_cast<int64_t>(lin.size()), act.data());
      cpu::add(act.data(), res.data(), static_cast<int64_t>(lin.size()), ref.data());
      cpu::fast::gemv_f32_rows(x.data(), rows, w.data(), bias.data(), res.data(), static_cast<int64_t>(OpKind::kGeluErf),
                               n_in, n_out, ours.data());
      EXPECT_LE(rel_diff(ours, ref), 1e-6) << "n_in " << n_in << " rows " << rows;
      // Row r alone gives the same bits as row r in the batch.
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<float> one(static_cast<size_t>(n_out));
        cpu::fast::gemv_f32_rows(x.data() + r * n_in, 1, w.data(), bias.data(), res.data() + r * n_out,
                                 static_cast<int64_t>(OpKind::kGeluErf), n_in, n_out, one.data());
        for (int64_t o = 0; o < n_out; ++o) {
          ASSERT_EQ(one[static_cast<size_t>(o)], ours[static_cast<size_t>(r * n_out + o)]) << "rows " << rows << " r " << r;
        }
      }
    }
  }
}

TEST(FastKernels, ActivationRoundingToInt16IsSymmetricPerGroup) {
  const int64_t n_in = 70, group = 32, n_groups = 3;
  auto x = randn(static_cast<size_t>(2 * n_in), 30);
  for (int64_t c = 32; c < 64; ++c) x[static_cast<size_t>(c)] = 0.0f;  // an all-zero group
  x[3] = -9.0f;                                                         // sets group 0's scale
  std::vector<int16_t> xq(x.size());
  std::vector<float> xs(static_cast<size_t>(2 * n_groups));
  cpu::fast::quantize_activations_i16(x.data(), 2, n_in, group, xq.data(), xs.data());
  EXPECT_FLOAT_EQ(xs[0], 9.0f / 32767.0f);
  EXPECT_EQ(xq[3], -32767);
  EXPECT_EQ(xs[1], 1.0f);  // all zeros: scale 1, values 0
  for (int64_t r = 0; r < 2; ++r) {
    for (int64_t c = 0; c < n_in; ++c) {
      const size_t i = static_cast<size_t>(r * n_in + c);
      const float s = xs[static_cast<size_t>(r * n_groups + c / group)];
      EXPECT_GE(xq[i], -32767);
      EXPECT_LE(std::abs(s * static_cast<float>(xq[i]) - x[i]), 0.5f * s * (1 + 1e-5f)) << r << " " << c;
    }
  }
}

// bf16 oneDNN GEMM (balanced on AVX512_BF16 / AMX CPUs) against fp32 linear on the bf16-rounded
// operands: the products of bf16 values are exact in fp32, so only the summation order differs.
TEST(FastKernels, OnednnBf16MatchesRoundedReference) {
  if (!optimize::cpu_features().avx512_bf16 && !optimize::cpu_features().amx_bf16) {
    GTEST_SKIP() << "this CPU (" << optimize::cpu_features().summary() << ") has no native bf16";
  }
  auto round_bf16 = [](std::vector<float> v) {
    for (float& e : v) e = bf16_to_f32(f32_to_bf16(e));
    return v;
  };
  for (int64_t rows : {1, 7, 64}) {
    const int64_t n_in = 384, n_out = 200;
    auto x = randn(static_cast<size_t>(rows * n_in), 40), w = randn(static_cast<size_t>(n_out * n_in), 41, 0.05f);
    auto bias = randn(static_cast<size_t>(n_out), 42), res = randn(static_cast<size_t>(rows * n_out), 43);
    cpu::fast::OnednnLinear lin(w.data(), n_out, n_in, bias.data(), static_cast<int64_t>(graph::OpKind::kGeluErf),
                                true, true);
    ASSERT_TRUE(lin.bf16());
    std::vector<float> ours(static_cast<size_t>(rows * n_out));
    lin.run(x.data(), rows, res.data(), ours.data());
    const auto xr = round_bf16(x), wr = round_bf16(w);
    std::vector<float> l(ours.size()), a(ours.size()), ref(ours.size());
    cpu::linear(xr.data(), wr.data(), bias.data(), rows, n_in, n_out, l.data());
    cpu::gelu_erf(l.data(), static_cast<int64_t>(l.size()), a.data());
    cpu::add(a.data(), res.data(), static_cast<int64_t>(l.size()), ref.data());
    EXPECT_LE(rel_diff(ours, ref), 1e-5) << "rows " << rows;
  }
}

// Without native bf16 oneDNN has no bf16 matmul here: the constructor says so with kUnsupported
// (the fast executable then runs that linear in fp32 and warns once), never a crash.
TEST(FastKernels, OnednnBf16RefusedWithoutNativeBf16) {
  if (optimize::cpu_features().avx512_bf16 || optimize::cpu_features().amx_bf16) GTEST_SKIP() << "native bf16";
  std::vector<float> w(static_cast<size_t>(200 * 384), 0.01f);
  try {
    cpu::fast::OnednnLinear lin(w.data(), 200, 384, nullptr, -1, false, true);
    // A oneDNN that emulates bf16 on this CPU may build it; then it must compute correctly.
    std::vector<float> x(static_cast<size_t>(7 * 384), 1.0f), out(static_cast<size_t>(7 * 200));
    lin.run(x.data(), 7, nullptr, out.data());
    EXPECT_NEAR(out[0], 384 * 0.01f, 0.05f);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("bf16"), std::string::npos) << e.what();
  }
}

}  // namespace kpt::test
