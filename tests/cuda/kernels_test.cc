// Every CUDA kernel against its CPU reference twin on adversarial shapes: sizes that are not
// multiples of the warp or vector width, length 1, GQA ratios, padding, windows, long contexts.
#include <numeric>

#include "backends/cpu/kernels/kernels.h"
#include "backends/cuda/gemm_cublaslt.h"
#include "backends/cuda/kernels/kernels.h"
#include "../cpp/test_util.h"
#include "gpu_test_util.h"
#include "kpt/tensor.h"
#include "runtime/sampler.h"

namespace kpt::test {

namespace {
constexpr double kF32Tol = 2e-6;  // same math in fp32, different rounding order
}

TEST(CudaKernels, ElementwiseMatchesReference) {
  KPT_REQUIRE_GPU();
  for (int64_t n : {1, 31, 769, 5125, 1 << 18}) {
    SCOPED_TRACE(n);
    auto a = random_floats(static_cast<size_t>(n), 1, 3.0f), b = random_floats(static_cast<size_t>(n), 2);
    auto da = to_device(a), db = to_device(b);
    auto out = poisoned(static_cast<size_t>(n));
    std::vector<float> ref(static_cast<size_t>(n));
    struct U {
      cuda::Unary op;
      void (*cpu)(const float*, int64_t, float*);
    };
    for (U u : {U{cuda::Unary::kGeluErf, cpu::gelu_erf}, U{cuda::Unary::kGeluTanh, cpu::gelu_tanh},
                U{cuda::Unary::kSilu, cpu::silu}, U{cuda::Unary::kRelu, cpu::relu}}) {
      cuda::unary(u.op, da.as<float>(), n, out.as<float>(), nullptr);
      u.cpu(a.data(), n, ref.data());
      EXPECT_LE(rel_diff(to_host<float>(out, ref.size()), ref), kF32Tol) << "unary " << static_cast<int>(u.op);
    }
    cuda::binary(cuda::Binary::kAdd, da.as<float>(), db.as<float>(), n, out.as<float>(), nullptr);
    cpu::add(a.data(), b.data(), n, ref.data());
    EXPECT_EQ(to_host<float>(out, ref.size()), ref);
    cuda::binary(cuda::Binary::kMul, da.as<float>(), db.as<float>(), n, out.as<float>(), nullptr);
    cpu::mul(a.data(), b.data(), n, ref.data());
    EXPECT_EQ(to_host<float>(out, ref.size()), ref);
  }
}

TEST(CudaKernels, NormsMatchReference) {
  KPT_REQUIRE_GPU();
  // 2048+ rows of <= 2048 elements, a multiple of 4, take the warp-per-row kernel; the others the
  // block one.
  for (auto [rows, dim] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 1}, {3, 33}, {5, 769}, {2, 4097}, {64, 2048}, {7, 768}, {9, 4}, {2049, 768}, {2048, 2044}, {2051, 8}}) {
    SCOPED_TRACE(testing::Message() << rows << "x" << dim);
    // An offset mean stresses the variance computation.
    auto x = random_floats(static_cast<size_t>(rows * dim), 3, 2.0f);
    for (auto& v : x) v += 5.0f;
    auto g = random_floats(static_cast<size_t>(dim), 4), b = random_floats(static_cast<size_t>(dim), 5);
    auto dx = to_device(x), dg = to_device(g), dbeta = to_device(b);
    auto out = poisoned(x.size());
    std::vector<float> ref(x.size());
    cuda::layer_norm(dx.as<float>(), dg.as<float>(), dbeta.as<float>(), rows, dim, 1e-5f, out.as<float>(), nullptr);
    cpu::layer_norm(x.data(), g.data(), b.data(), rows, dim, 1e-5, ref.data());
    EXPECT_LE(rel_diff(to_host<float>(out, ref.size()), ref), 2e-5) << "layer_norm";
    cuda::rms_norm(dx.as<float>(), dg.as<float>(), rows, dim, 1e-6f, out.as<float>(), nullptr);
    cpu::rms_norm(x.data(), g.data(), rows, dim, 1e-6, ref.data());
    EXPECT_LE(rel_diff(to_host<float>(out, ref.size()), ref), 2e-5) << "rms_norm";
  }
}

TEST(CudaKernels, RopeMatchesReference) {
  KPT_REQUIRE_GPU();
  for (auto [tokens, heads, hd] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 1, 2}, {7, 3, 6}, {33, 5, 64}, {4, 32, 128}}) {
    SCOPED_TRACE(testing::Message() << tokens << " " << heads << " " << hd);
    auto x = random_floats(static_cast<size_t>(tokens * heads * hd), 6);
    std::vector<int64_t> pos(static_cast<size_t>(tokens));
    for (int64_t t = 0; t < tokens; ++t) pos[static_cast<size_t>(t)] = (t * 977) % 4096;  // large angles
    std::vector<double> inv(static_cast<size_t>(hd / 2));
    for (int64_t i = 0; i < hd / 2; ++i) inv[static_cast<size_t>(i)] = std::pow(10000.0, -2.0 * i / hd);
    std::vector<float> inv_f(inv.begin(), inv.end());
    auto dx = to_device(x), dp = to_device(pos), di = to_device(inv_f);
    auto out = poisoned(x.size());
    std::vector<float> ref(x.size());
    cuda::rope(dx.as<float>(), dp.as<int64_t>(), tokens, heads, hd, di.as<float>(), out.as<float>(), nullptr);
    cpu::rope(x.data(), pos.data(), tokens, heads, hd, inv.data(), ref.data());
    EXPECT_LE(rel_diff(to_host<float>(out, ref.size()), ref), 1e-5);
  }
}

TEST(CudaKernels, GemmF32MatchesReference) {
  KPT_REQUIRE_GPU();
  cuda::CublasLtGemm gemm;
  for (auto [m, n, k] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 1, 1}, {1, 769, 33}, {3, 5, 1025}, {128, 768, 768}, {7, 5632, 2048}}) {
    for (bool with_bias : {false, true}) {
      SCOPED_TRACE(testing::Message() << m << "x" << n << "x" << k << (with_bias ? " bias" : ""));
      auto x = random_floats(static_cast<size_t>(m * k), 7), w = random_floats(static_cast<size_t>(n * k), 8);
      auto bias = random_floats(static_cast<size_t>(n), 9);
      auto dx = to_device(x), dw = to_device(w), dbias = to_device(bias);
      auto out = poisoned(static_cast<size_t>(m * n));
      std::vector<float> ref(static_cast<size_t>(m * n));
      gemm.linear(cuda::GemmType::kF32, dx.data(), dw.data(), with_bias ? dbias.as<float>() : nullptr, out.as<float>(), m,
                  n, k, nullptr);
      cpu::linear(x.data(), w.data(), with_bias ? bias.data() : nullptr, m, k, n, ref.data());
      // fp32 sums of k terms in different orders: error grows like sqrt(k) ulps.
      EXPECT_LE(rel_diff(to_host<float>(out, ref.size()), ref), 1e-5);
    }
  }
  std::printf("[ parity   ] cuBLASLt plans %zu, SIMT fallbacks %lld\n", gemm.n_cached_plans(),
              static_cast<long long>(gemm.n_simt_fallbacks()));
}

TEST(CudaKernels, GemmBf16MatchesReferenceOnRoundedInputs) {
  KPT_REQUIRE_GPU();
  cuda::CublasLtGemm gemm;
  for (auto [m, n, k] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 3, 8}, {5, 769, 64}, {64, 2048, 2048}}) {
    SCOPED_TRACE(testing::Message() << m << "x" << n << "x" << k);
    auto x = random_floats(static_cast<size_t>(m * k), 10), w = random_floats(static_cast<size_t>(n * k), 11);
    auto bias = random_floats(static_cast<size_t>(n), 12);
    // The reference gets the same bf16-rounded operands, so only accumulation order differs.
    auto round = [](std::vector<float>& v) {
      for (auto& e : v) e = bf16_to_f32(f32_to_bf16(e));
    };
    round(x);
    round(w);
    auto dx = to_device(x), dw = to_device(w), dbias = to_device(bias);
    cuda::DeviceBuffer xb(x.size() * 2), wb(w.size() * 2);
    cuda::f32_to_bf16(dx.as<float>(), static_cast<int64_t>(x.size()), xb.as<uint16_t>(), nullptr);
    cuda::f32_to_bf16(dw.as<float>(), static_cast<int64_t>(w.size()), wb.as<uint16_t>(), nullptr);
    auto out = poisoned(static_cast<size_t>(m * n));
    std::vector<float> ref(static_cast<size_t>(m * n));
    gemm.linear(cuda::GemmType::kBF16, xb.data(), wb.data(), dbias.as<float>(), out.as<float>(), m, n, k, nullptr);
    cpu::linear(x.data(), w.data(), bias.data(), m, k, n, ref.data());
    EXPECT_LE(rel_diff(to_host<float>(out, ref.size()), ref), 1e-5);
  }
}

TEST(CudaKernels, GemmSimtMatchesReference) {
  KPT_REQUIRE_GPU();
  for (auto [m, n, k] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 1, 1}, {3, 74, 33}, {17, 5, 769}}) {
    SCOPED_TRACE(testing::Message() << m << "x" << n << "x" << k);
    auto x = random_floats(static_cast<size_t>(m * k), 14), w = random_floats(static_cast<size_t>(n * k), 15);
    auto bias = random_floats(static_cast<size_t>(n), 16);
    auto dx = to_device(x), dw = to_device(w), dbias = to_device(bias);
    auto out = poisoned(static_cast<size_t>(m * n));
    std::vector<float> ref(static_cast<size_t>(m * n));
    cuda::gemm_simt(false, dx.data(), dw.data(), dbias.as<float>(), out.as<float>(), m, n, k, nullptr);
    cpu::linear(x.data(), w.data(), bias.data(), m, k, n, ref.data());
    EXPECT_LE(rel_diff(to_host<float>(out, ref.size()), ref), 1e-5);
  }
}

TEST(CudaKernels, EmbeddingAndGatherRows) {
  KPT_REQUIRE_GPU();
  const int64_t vocab = 37, dim = 769, batch = 3, seq = 5, n_rows = 2;
  auto table = random_floats(static_cast<size_t>(vocab * dim), 13);
  std::vector<int64_t> ids = {0, 36, 5, 5, 17, 1, 2, 3, 4, 35, 9, 9, 9, 0, 36};
  std::vector<int64_t> rows = {4, 0, 2, 2, 0, 4};
  auto dt = to_device(table), di = to_device(ids), dr = to_device(rows);
  auto emb = poisoned(static_cast<size_t>(batch * seq * dim));
  cuda::embedding(dt.as<float>(), dim, di.as<int64_t>(), batch * seq, emb.as<float>(), nullptr);
  std::vector<float> ref(static_cast<size_t>(batch * seq * dim));
  cpu::embedding(table.data(), dim, ids.data(), batch * seq, ref.data());
  EXPECT_EQ(to_host<float>(emb, ref.size()), ref);
  auto out = poisoned(static_cast<size_t>(batch * n_rows * dim));
  cuda::gather_rows(emb.as<float>(), dr.as<int64_t>(), batch, seq, n_rows, dim, out.as<float>(), nullptr);
  std::vector<float> ref_rows(static_cast<size_t>(batch * n_rows * dim));
  cpu::gather_rows(ref.data(), rows.data(), batch, seq, n_rows, dim, ref_rows.data());
  EXPECT_EQ(to_host<float>(out, ref_rows.size()), ref_rows);
}

// Device argmax (greedy decoding) against the host twin: ties take the first index, rows of
// -inf, a maximum in the last element, vocabulary sizes that are not multiples of anything.
TEST(CudaKernels, ArgmaxRowsMatchesHostArgmax) {
  KPT_REQUIRE_GPU();
  for (int64_t n : {1, 7, 512, 32000, 50257}) {
    const int64_t rows = 9;
    auto x = random_floats(static_cast<size_t>(rows * n), 31);
    auto at = [&](int64_t r, int64_t i) -> float& { return x[static_cast<size_t>(r * n + i)]; };
    if (n > 3) {
      at(1, n - 1) = 100.0f;                      // maximum in the last element
      at(2, 3) = at(2, n - 2) = 50.0f;            // a tie: the first wins
      for (int64_t i = 0; i < n; ++i) at(3, i) = -INFINITY;
      at(4, 0) = 60.0f;                           // maximum in the first element
      for (int64_t i = 0; i < n; ++i) at(5, i) = 1.0f;  // all equal: index 0
    }
    auto dx = to_device(x);
    cuda::DeviceBuffer ids(static_cast<size_t>(rows) * sizeof(int64_t));
    cuda::argmax_rows(dx.as<float>(), rows, n, ids.as<int64_t>(), nullptr);
    const auto got = to_host<int64_t>(ids, static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t want = runtime::argmax(std::span<const float>(x.data() + r * n, static_cast<size_t>(n)));
      EXPECT_EQ(got[static_cast<size_t>(r)], want) << "n " << n << " row " << r;
    }
  }
}

// Device sampling against its host twin, runtime::choose_sampled, with the same uniform draws:
// ties between logits (lower id first), -inf entries, +0 and -0, top-k alone, with top-p, k = the
// whole small vocabulary, k = 1 and 1,024, temperatures below and above 1, draws at 0 and near 1.
TEST(CudaKernels, SampleRowsMatchesHostSampler) {
  KPT_REQUIRE_GPU();
  struct Case {
    int64_t n, top_k;
    double temperature, top_p;
    int ties;  // 0: continuous logits; > 0: rounded to 1/ties steps (many equal logits)
  };
  const std::vector<Case> cases = {{1, 0, 1.0, 1.0, 0},      {7, 0, 0.7, 1.0, 0},       {300, 0, 1.3, 0.9, 2},
                                   {1000, 200, 0.8, 0.7, 2}, {32000, 50, 1.0, 0.9, 0},  {32000, 1, 1.0, 1.0, 0},
                                   {32000, 1024, 1.7, 1.0, 4}, {50257, 40, 0.3, 0.95, 0}, {1024, 0, 1.0, 0.5, 1},
                                   {5000, 64, 1.0, 1e-9, 0}};
  uint32_t seed = 900;
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "n=" << c.n << " top_k=" << c.top_k << " T=" << c.temperature << " top_p="
                                    << c.top_p << " ties=" << c.ties);
    const int64_t rows = 8;
    auto x = random_floats(static_cast<size_t>(rows * c.n), seed++, 3.0f);
    if (c.ties > 0) {
      for (auto& v : x) v = std::round(v * static_cast<float>(c.ties)) / static_cast<float>(c.ties);
    }
    for (int64_t i = 0; i < c.n; i += 3) x[static_cast<size_t>(2 * c.n + i)] = -INFINITY;  // row 2: a third masked
    if (c.n >= 4) {
      x[static_cast<size_t>(3 * c.n + 1)] = 0.0f;  // row 3: +0 and -0 tie as equal logits
      x[static_cast<size_t>(3 * c.n + 2)] = -0.0f;
    }
    GenerateOptions o;
    o.do_sample = true;
    o.temperature = c.temperature;
    o.top_k = c.top_k;
    o.top_p = c.top_p;
    const int64_t k = std::min(c.top_k > 0 ? c.top_k : c.n, c.n);
    auto dx = to_device(x);
    cuda::DeviceBuffer ids(static_cast<size_t>(rows) * sizeof(int64_t));
    for (int trial = 0; trial < 4; ++trial) {
      std::vector<double> r(static_cast<size_t>(rows));
      std::mt19937_64 gen(seed * 31 + static_cast<uint32_t>(trial));
      for (auto& v : r) v = std::uniform_real_distribution<double>(0.0, 1.0)(gen);
      r[0] = 0.0;
      r[1] = 0.9999999999;
      auto dr = to_device(r);
      cuda::sample_rows(dx.as<float>(), rows, c.n, c.temperature, k, c.top_p, dr.as<double>(), ids.as<int64_t>(), nullptr);
      const auto got = to_host<int64_t>(ids, static_cast<size_t>(rows));
      for (int64_t row = 0; row < rows; ++row) {
        const int64_t want = runtime::choose_sampled(
            std::span<const float>(x.data() + row * c.n, static_cast<size_t>(c.n)), o, r[static_cast<size_t>(row)]);
        EXPECT_EQ(got[static_cast<size_t>(row)], want) << "row " << row << " trial " << trial;
      }
    }
  }
}

// Paged attention on shuffled block tables, against the CPU reference (which softmaxes in double).
struct AttnCase {
  int64_t batch, seq, past, n_heads, n_kv, hd, block_size;
  bool causal;
  int64_t window;
  bool padding;
  bool tensor_cores = false;  // fp16 operands (levels above conservative): the mma kernel for prefill
};

class CudaAttention : public ::testing::TestWithParam<AttnCase> {};

TEST_P(CudaAttention, MatchesReference) {
  KPT_REQUIRE_GPU();
  const AttnCase c = GetParam();
  const int64_t total = c.past + c.seq;
  const int64_t blocks_per_seq = (total + c.block_size - 1) / c.block_size;
  const int64_t n_blocks = blocks_per_seq * c.batch + 3;
  // Blocks handed out in a scrambled order: the kernels must follow the tables.
  std::vector<int32_t> perm(static_cast<size_t>(n_blocks));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), std::mt19937(42));
  std::vector<std::vector<uint8_t>> valid(static_cast<size_t>(c.batch), std::vector<uint8_t>(static_cast<size_t>(total), 1));
  if (c.padding) {
    for (int64_t b = 0; b < c.batch; ++b) {
      for (int64_t j = 0; j < total; ++j) {
        // Left padding of b tokens in row b, plus a hole in the middle.
        if (j < b || j == total / 2) valid[static_cast<size_t>(b)][static_cast<size_t>(j)] = 0;
      }
    }
  }
  const size_t pool = static_cast<size_t>(n_blocks * c.block_size * c.n_kv * c.hd);
  // Past keys pre-filled in both pools identically; the new ones come through the write kernel.
  auto k_pool = random_floats(pool, 20), v_pool = random_floats(pool, 21);
  auto q = random_floats(static_cast<size_t>(c.batch * c.seq * c.n_heads * c.hd), 22);
  auto k = random_floats(static_cast<size_t>(c.batch * c.seq * c.n_kv * c.hd), 23);
  auto v = random_floats(static_cast<size_t>(c.batch * c.seq * c.n_kv * c.hd), 24);
  std::vector<int32_t> tables(static_cast<size_t>(c.batch * blocks_per_seq));
  for (size_t i = 0; i < tables.size(); ++i) tables[i] = perm[i];
  std::vector<int32_t> past(static_cast<size_t>(c.batch), static_cast<int32_t>(c.past));
  std::vector<uint8_t> valid_flat;
  for (const auto& r : valid) valid_flat.insert(valid_flat.end(), r.begin(), r.end());

  cpu::AttentionContext ctx;
  ctx.block_size = c.block_size;
  ctx.n_kv_heads = c.n_kv;
  ctx.head_dim = c.hd;
  std::vector<float> k_ref = k_pool, v_ref = v_pool;
  ctx.k_pool = {k_ref.data()};
  ctx.v_pool = {v_ref.data()};
  for (int64_t b = 0; b < c.batch; ++b) {
    SequenceView s;
    s.block_table = tables.data() + b * blocks_per_seq;
    s.n_blocks = blocks_per_seq;
    s.past_len = c.past;
    s.key_valid = valid[static_cast<size_t>(b)].data();
    ctx.seqs.push_back(s);
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.hd));
  std::vector<float> ref(q.size());
  cpu::paged_attention(q.data(), k.data(), v.data(), ctx, 0, c.batch, c.seq, c.n_heads, c.causal, scale, c.window,
                       ref.data());

  auto dk_pool = to_device(k_pool), dv_pool = to_device(v_pool), dq = to_device(q), dk = to_device(k),
       dv = to_device(v), dt = to_device(tables), dp = to_device(past), dvalid = to_device(valid_flat);
  cuda::PagedAttention p;
  p.k_pool = dk_pool.as<float>();
  p.v_pool = dv_pool.as<float>();
  p.block_tables = dt.as<int32_t>();
  p.max_blocks = blocks_per_seq;
  p.past_len = dp.as<int32_t>();
  p.key_valid = dvalid.as<uint8_t>();
  p.key_valid_stride = total;
  p.batch = c.batch;
  p.seq = c.seq;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv;
  p.head_dim = c.hd;
  p.block_size = c.block_size;
  p.causal = c.causal;
  p.scale = static_cast<float>(scale);
  p.window = c.window;
  p.tensor_cores = c.tensor_cores;
  auto out = poisoned(q.size());
  cuda::paged_kv_write(p, dk.as<float>(), dv.as<float>(), nullptr);
  cuda::paged_attention(p, dq.as<float>(), out.as<float>(), nullptr);
  EXPECT_LE(rel_diff(to_host<float>(out, ref.size()), ref),
            c.tensor_cores && c.seq >= cuda::kTiledMinSeq ? tolerance("cuda_fp16_attention_vs_reference") : 1e-5);
  EXPECT_EQ(to_host<float>(dk_pool, pool), k_ref) << "K written to other slots than the reference";
  EXPECT_EQ(to_host<float>(dv_pool, pool), v_ref);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaAttention,
    ::testing::Values(AttnCase{1, 1, 0, 1, 1, 1, 16, true, 0, false},         // one key, head_dim 1
                      AttnCase{1, 1, 40, 4, 4, 64, 16, true, 0, false},       // decode
                      AttnCase{3, 1, 77, 12, 4, 64, 16, true, 0, true},       // batched GQA decode with padding
                      AttnCase{2, 17, 0, 6, 2, 40, 16, true, 0, true},        // prefill, odd head_dim
                      AttnCase{2, 9, 0, 3, 3, 33, 4, false, 0, true},         // bidirectional (encoder)
                      AttnCase{1, 5, 30, 8, 1, 128, 16, true, 7, false},      // sliding window, MQA
                      AttnCase{2, 3, 20, 4, 2, 256, 8, true, 0, false},       // head_dim 256
                      AttnCase{1, 1, 3000, 32, 4, 64, 16, true, 0, false},    // long decode context
                      AttnCase{1, 128, 0, 32, 4, 64, 16, true, 0, false},     // prefill: tiled kernel
                      AttnCase{2, 161, 0, 16, 4, 64, 16, true, 0, true},      // tiled, partial last tile, padding
                      AttnCase{1, 300, 0, 16, 16, 40, 8, false, 0, true},     // tiled encoder, head_dim 40 (padded dims)
                      AttnCase{1, 300, 0, 16, 4, 64, 16, true, 50, true},     // tiled with a sliding window
                      AttnCase{2, 70, 45, 8, 2, 64, 16, true, 0, true},       // tiled after a cached prefix
                      AttnCase{1, 32, 0, 2, 1, 4, 4, true, 0, false},         // tiled, tiny head_dim
                      AttnCase{1, 300, 0, 16, 16, 128, 16, true, 0, true},    // > kSplitMaxRows, head_dim 128: warp per row
                      AttnCase{8, 1, 150, 32, 4, 64, 16, true, 0, true},      // batch-8 decode, split kernel
                      AttnCase{2, 1, 37, 4, 2, 128, 16, true, 16, false},     // decode with a window: split warps idle
                      // Tensor-core kernel (fp16 operands): partial tiles, padding holes, GQA, windows,
                      // a cached prefix, head_dim 40/128, bidirectional, and decode-sized calls that
                      // must keep the fp32 kernels.
                      AttnCase{1, 128, 0, 32, 4, 64, 16, true, 0, false, true},
                      AttnCase{2, 161, 0, 16, 4, 64, 16, true, 0, true, true},
                      AttnCase{1, 300, 0, 16, 16, 40, 8, false, 0, true, true},
                      AttnCase{1, 300, 0, 16, 4, 64, 16, true, 50, true, true},
                      AttnCase{2, 70, 45, 8, 2, 64, 16, true, 0, true, true},
                      AttnCase{1, 32, 0, 2, 1, 4, 4, true, 0, false, true},
                      AttnCase{2, 200, 0, 8, 2, 128, 16, true, 0, true, true},
                      AttnCase{3, 77, 0, 12, 12, 64, 16, false, 0, true, true},
                      // more than kTcKeyCache visible keys: offsets looked up per tile
                      AttnCase{1, 1100, 0, 4, 2, 64, 16, true, 0, true, true},
                      AttnCase{1, 40, 1030, 4, 2, 128, 16, true, 0, false, true},
                      AttnCase{1, 1, 3000, 32, 4, 64, 16, true, 0, false, true}));

}  // namespace kpt::test
