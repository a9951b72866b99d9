// Whole-model checks of the CUDA backend on every fixture of tests/fixtures/models:
// fp32 parity with transformers and with the CPU reference backend, bf16 (level balanced) within
// its budget, greedy generation equal to transformers, and the invariants (KV decode ==
// recompute, batched == single) on the GPU. Every test skips where no GPU is present.
#include "../cpp/test_util.h"
#include "gpu_test_util.h"
#include "io/hf_config.h"
#include "io/npy.h"
#include "models/model.h"
#include "runtime/session.h"

namespace kpt::test {

namespace {

std::unique_ptr<runtime::Session> open_session(const std::filesystem::path& dir, const std::string& device,
                                               Level level = Level::kReference) {
  auto cfg = io::HfConfig::load(dir.string());
  auto store = io::WeightStore::open_dir(dir.string());
  CompileOptions co;
  co.device = device;
  co.level = level;
  return std::make_unique<runtime::Session>(models::build_model(cfg, store), co);
}

std::vector<std::vector<int64_t>> mask_of(const ForwardInputs& in) {
  return in.attention_mask.empty()
             ? std::vector<std::vector<int64_t>>(in.input_ids.size(), std::vector<int64_t>(in.input_ids[0].size(), 1))
             : in.attention_mask;
}

std::vector<std::filesystem::path> forward_cases(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("forward_", 0) == 0 && e.path().extension() == ".json") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

class CudaModels : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaModels, F32MatchesTransformersAndCpu) {
  KPT_REQUIRE_GPU();
  const auto dir = fixtures_dir() / GetParam();
  auto gpu = open_session(dir, "cuda:0");
  auto cpu = open_session(dir, "cpu");
  int n = 0;
  for (const auto& path : forward_cases(dir)) {
    SCOPED_TRACE(path.filename().string());
    ForwardInputs in = inputs_from_json(read_json(path));
    Tensor ours = gpu->forward(in);
    Tensor host = cpu->forward(in);
    Tensor ref = io::read_npy((dir / (path.stem().string() + "_expected.npy")).string());
    ASSERT_EQ(ours.shape(), ref.shape());
    const auto mask = mask_of(in);
    Diff d = masked_diff(ours.data<float>(), ref.data<float>(), mask, ours.dim(-1));
    EXPECT_LE(d.rel(), tolerance("fp32_vs_transformers")) << d.max_abs << " / " << d.max_ref;
    Diff dc = masked_diff(ours.data<float>(), host.data<float>(), mask, ours.dim(-1));
    EXPECT_LE(dc.rel(), tolerance("cuda_f32_vs_cpu_reference")) << dc.max_abs << " / " << dc.max_ref;
    std::printf("[ parity   ] %-24s %-14s f32 vs transformers %.2e, vs cpu %.2e\n", GetParam().c_str(),
                path.stem().string().c_str(), d.rel(), dc.rel());
    ++n;
  }
  EXPECT_GE(n, 3);
}

TEST_P(CudaModels, Bf16WithinBudget) {
  KPT_REQUIRE_GPU();
  const auto dir = fixtures_dir() / GetParam();
  auto gpu = open_session(dir, "cuda:0", Level::kBalanced);
  for (const auto& path : forward_cases(dir)) {
    SCOPED_TRACE(path.filename().string());
    ForwardInputs in = inputs_from_json(read_json(path));
    Tensor ours = gpu->forward(in);
    Tensor ref = io::read_npy((dir / (path.stem().string() + "_expected.npy")).string());
    Diff d = masked_diff(ours.data<float>(), ref.data<float>(), mask_of(in), ours.dim(-1));
    EXPECT_LE(d.rel(), tolerance("bf16_vs_transformers")) << d.max_abs << " / " << d.max_ref;
    std::printf("[ parity   ] %-24s %-14s bf16 vs transformers %.2e\n", GetParam().c_str(), path.stem().string().c_str(),
                d.rel());
  }
}

TEST_P(CudaModels, GreedyMatchesTransformersGenerate) {
  KPT_REQUIRE_GPU();
  const auto dir = fixtures_dir() / GetParam();
  if (!std::filesystem::exists(dir / "generate.json")) GTEST_SKIP() << "encoder: no generation";
  EngineOptions eo;
  eo.device = "cuda";
  auto engine = Engine::load(dir.string(), eo);
  EXPECT_EQ(engine->device(), "cuda:0");
  auto g = read_json(dir / "generate.json");
  GenerateOptions opts;
  opts.max_new_tokens = g.at("max_new_tokens").get<int64_t>();
  opts.eos_token_ids = std::vector<int64_t>{};
  GenerateResult r = engine->generate({g.at("prompt_ids").get<std::vector<int64_t>>()}, opts);
  EXPECT_EQ(r.new_ids[0], g.at("new_ids").get<std::vector<int64_t>>());
}

// Seeded sampling on the GPU (top-k, top-p, temperature: sampled on the device) gives the tokens
// the CPU gives at fp32 with the same seed: the same draws in the same order, the same arithmetic
// (runtime::choose_sampled is the device sampler's twin) on logits 1e-6 apart. top_k 20 and 0 (the
// fixtures' vocabularies are below 1,024, so k = the whole vocabulary is sampled on the device
// too; a larger vocabulary with top_k 0 copies the logits and samples on the host).
TEST_P(CudaModels, SampledGenerationMatchesCpu) {
  KPT_REQUIRE_GPU();
  const auto dir = fixtures_dir() / GetParam();
  if (!std::filesystem::exists(dir / "generate.json")) GTEST_SKIP() << "encoder: no generation";
  auto g = read_json(dir / "generate.json");
  const auto prompt = g.at("prompt_ids").get<std::vector<int64_t>>();
  std::vector<int64_t> prompt2(prompt.begin(), prompt.begin() + static_cast<long>(prompt.size() / 2 + 1));
  for (int64_t top_k : {20, 0}) {
    SCOPED_TRACE(top_k);
    GenerateOptions opts;
    opts.max_new_tokens = 16;
    opts.eos_token_ids = std::vector<int64_t>{};
    opts.do_sample = true;
    opts.temperature = 0.8;
    opts.top_k = top_k;
    opts.top_p = 0.9;
    opts.seed = 7;
    GenerateResult results[2];
    for (int on_gpu = 0; on_gpu < 2; ++on_gpu) {
      EngineOptions eo;
      eo.device = on_gpu != 0 ? "cuda" : "cpu";
      auto engine = Engine::load(dir.string(), eo);
      results[on_gpu] = engine->generate({prompt, prompt2}, opts);
    }
    EXPECT_EQ(results[1].new_ids, results[0].new_ids);
  }
}

TEST_P(CudaModels, KvDecodeEqualsRecompute) {
  KPT_REQUIRE_GPU();
  auto s = open_session(fixtures_dir() / GetParam(), "cuda:0");
  if (!s->info().causal_lm) GTEST_SKIP() << "encoder";
  const int64_t vocab = s->info().vocab_size;
  std::vector<int64_t> ids;
  for (int i = 0; i < 40; ++i) ids.push_back((i * 37 + 11) % vocab);  // crosses two KV blocks
  Tensor full = s->forward({{ids}, {}, {}});  // [1, 40, V]
  int64_t seq = s->cache().new_sequence();
  const size_t prefill = 5;
  Tensor step = s->step_last_logits({seq}, {std::vector<int64_t>(ids.begin(), ids.begin() + prefill)},
                                    {std::vector<int64_t>(prefill, 1)});
  double max_abs = 0, max_ref = 0;
  for (size_t pos = prefill - 1; pos < ids.size(); ++pos) {
    const float* a = step.data<float>();
    const float* b = full.data<float>() + static_cast<int64_t>(pos) * vocab;
    for (int64_t v = 0; v < vocab; ++v) {
      max_abs = std::max(max_abs, static_cast<double>(std::abs(a[v] - b[v])));
      max_ref = std::max(max_ref, static_cast<double>(std::abs(b[v])));
    }
    if (pos + 1 < ids.size()) step = s->step_last_logits({seq}, {{ids[pos + 1]}}, {{1}});
  }
  s->cache().free_sequence(seq);
  EXPECT_LE(max_abs / max_ref, tolerance("kv_decode_vs_recompute")) << max_abs << " / " << max_ref;
}

TEST_P(CudaModels, BatchedEqualsSingle) {
  KPT_REQUIRE_GPU();
  const auto dir = fixtures_dir() / GetParam();
  auto s = open_session(dir, "cuda:0");
  for (const char* which : {"forward_right.json", "forward_left.json"}) {
    SCOPED_TRACE(which);
    ForwardInputs batch = inputs_from_json(read_json(dir / which));
    Tensor all = s->forward(batch);
    const int64_t dim = all.dim(-1), seq = all.dim(1);
    for (size_t r = 0; r < batch.input_ids.size(); ++r) {
      std::vector<size_t> kept;
      std::vector<int64_t> ids, types;
      for (size_t t = 0; t < batch.input_ids[r].size(); ++t) {
        if (!batch.attention_mask[r][t]) continue;
        kept.push_back(t);
        ids.push_back(batch.input_ids[r][t]);
        if (!batch.token_type_ids.empty()) types.push_back(batch.token_type_ids[r][t]);
      }
      ForwardInputs one;
      one.input_ids = {ids};
      if (!types.empty()) one.token_type_ids = {types};
      Tensor alone = s->forward(one);
      double max_abs = 0, max_ref = 0;
      for (size_t i = 0; i < kept.size(); ++i) {
        const float* a = all.data<float>() + (static_cast<int64_t>(r) * seq + static_cast<int64_t>(kept[i])) * dim;
        const float* b = alone.data<float>() + static_cast<int64_t>(i) * dim;
        for (int64_t v = 0; v < dim; ++v) {
          max_abs = std::max(max_abs, static_cast<double>(std::abs(a[v] - b[v])));
          max_ref = std::max(max_ref, static_cast<double>(std::abs(b[v])));
        }
      }
      EXPECT_LE(max_abs / max_ref, tolerance("batched_vs_single")) << "row " << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaModels, ::testing::ValuesIn(fixture_cases()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// After the first steps of a shape, decode steps take their activations from the cache.
TEST(CudaRuntime, DecodeMakesNoDeviceAllocationsAfterWarmup) {
  KPT_REQUIRE_GPU();
  const auto dir = fixtures_dir() / "llama_gqa3_headdim";
  auto cfg = io::HfConfig::load(dir.string());
  auto model = models::build_model(cfg, io::WeightStore::open_dir(dir.string()));
  runtime::KvCache cache;
  KvLayout layout{model.info.n_layers, model.info.n_kv_heads, model.info.head_dim, cache.block_size()};
  auto exec = cuda::compile(model.graph, layout, 0, Level::kReference);
  const int64_t seq = cache.new_sequence();
  auto step = [&](int64_t n_new) {
    cache.append(seq, std::vector<int64_t>(static_cast<size_t>(n_new), 1));
    std::vector<int64_t> ids(static_cast<size_t>(n_new), 3), pos(static_cast<size_t>(n_new));
    const int64_t start = cache.length(seq) - n_new;
    for (int64_t i = 0; i < n_new; ++i) pos[static_cast<size_t>(i)] = start + i;
    std::map<std::string, Tensor> in;
    in["input_ids"] = Tensor::from_i64(ids, {1, n_new});
    in["position_ids"] = Tensor::from_i64(pos, {1, n_new});
    in["logit_rows"] = Tensor::from_i64(std::vector<int64_t>{n_new - 1}, {1, 1});
    return exec->run(in, cache.step({seq}, n_new));
  };
  step(7);
  for (int i = 0; i < 3; ++i) step(1);
  const int64_t warm = cuda::activation_allocations(*exec);
  for (int i = 0; i < 20; ++i) step(1);
  EXPECT_EQ(cuda::activation_allocations(*exec), warm);
}

// CUDA graph replay of decode steps equals eager launches: batch 2 with one left-padded row, a
// KV pool that starts at 2 blocks so it grows (and the graphs are re-captured) mid-generation.
class CudaGraphs : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaGraphs, ReplayEqualsEager) {
  KPT_REQUIRE_GPU();
  const auto dir = fixtures_dir() / GetParam();
  auto cfg = io::HfConfig::load(dir.string());
  auto model = models::build_model(cfg, io::WeightStore::open_dir(dir.string()));
  if (!model.info.causal_lm) GTEST_SKIP() << "encoder";
  std::vector<std::vector<Tensor>> results[2];
  for (int graphs = 0; graphs < 2; ++graphs) {
    runtime::KvCache cache(16, 2);
    KvLayout layout{model.info.n_layers, model.info.n_kv_heads, model.info.head_dim, cache.block_size()};
    auto exec = cuda::compile(model.graph, layout, 0, Level::kBalanced);
    cuda::set_cuda_graphs(*exec, graphs == 1);
    const std::vector<int64_t> seqs = {cache.new_sequence(), cache.new_sequence()};
    auto step = [&](int64_t n_new, bool pad_row1) {
      std::vector<int64_t> ids, pos;
      for (size_t b = 0; b < 2; ++b) {
        std::vector<int64_t> mask(static_cast<size_t>(n_new), 1);
        if (pad_row1 && b == 1) mask[0] = mask[1] = 0;
        const int64_t valid_before = cache.valid_tokens(seqs[b]);
        cache.append(seqs[b], mask);
        int64_t valid = valid_before;
        for (int64_t i = 0; i < n_new; ++i) {
          valid += mask[static_cast<size_t>(i)];
          ids.push_back((valid * 31 + static_cast<int64_t>(b) * 7) % model.info.vocab_size);
          pos.push_back(std::max<int64_t>(valid - 1, 0));
        }
      }
      std::map<std::string, Tensor> in;
      in["input_ids"] = Tensor::from_i64(ids, {2, n_new});
      in["position_ids"] = Tensor::from_i64(pos, {2, n_new});
      in["logit_rows"] = Tensor::from_i64(std::vector<int64_t>{n_new - 1, n_new - 1}, {2, 1});
      results[graphs].push_back(exec->run(in, cache.step(seqs, n_new)));
    };
    step(6, true);
    for (int i = 0; i < 40; ++i) step(1, false);  // 46 tokens: the pool grows from 2 blocks
  }
  ASSERT_EQ(results[0].size(), results[1].size());
  double worst = 0;
  for (size_t i = 0; i < results[0].size(); ++i) {
    const Tensor& a = results[0][i][0];
    const Tensor& b = results[1][i][0];
    ASSERT_EQ(a.shape(), b.shape());
    worst = std::max(worst, rel_diff(b.to_f32_vector(), a.to_f32_vector()));
  }
  // Same kernels, same arguments but the padded metadata: equal up to float rounding at most.
  EXPECT_LE(worst, 1e-6);
  std::printf("[ parity   ] %-24s graph replay vs eager (bf16, 41 steps) %.2e\n", GetParam().c_str(), worst);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaGraphs, ::testing::ValuesIn(fixture_cases()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// The fusion plan (KPT_CUDA_FUSION=0 turns it off) and graphs of repeated non-decode shapes
// (KPT_CUDA_GRAPHS=0) change launches, not results: the fixture's batch three times (the second
// call captures a graph, the third replays it), encoders included, at fp32 and at balanced (bf16
// GEMMs: the bf16 copies that norms and activations write for them equal the cast kernel's; 33
// rows, so cuBLASLt runs in both and the GEMV, which reads fp32 activations, in neither).
TEST_P(CudaGraphs, FusedShapeGraphsEqualUnfusedEager) {
  KPT_REQUIRE_GPU();
  const auto dir = fixtures_dir() / GetParam();
  const ForwardInputs in = inputs_from_json(read_json(dir / "forward_right.json"));
  for (Level level : {Level::kReference, Level::kBalanced}) {
    SCOPED_TRACE(level == Level::kReference ? "reference" : "balanced");
    std::vector<Tensor> outs[2];
    int64_t launches[2] = {0, 0};
    for (int plain = 0; plain < 2; ++plain) {
      if (plain == 1) {
        ::setenv("KPT_CUDA_FUSION", "0", 1);
        ::setenv("KPT_CUDA_GRAPHS", "0", 1);
      }
      auto s = open_session(dir, "cuda:0", level);
      ::unsetenv("KPT_CUDA_FUSION");
      ::unsetenv("KPT_CUDA_GRAPHS");
      for (int i = 0; i < 3; ++i) outs[plain].push_back(s->forward(in));
      launches[plain] = cuda::last_run_launches();
    }
    double worst = 0;
    for (size_t i = 0; i < 3; ++i) worst = std::max(worst, rel_diff(outs[0][i].to_f32_vector(), outs[1][i].to_f32_vector()));
    EXPECT_LE(worst, tolerance("cuda_fused_vs_unfused"));
    EXPECT_LT(launches[0], launches[1]) << "the fusion plan merged nothing";
    std::printf("[ parity   ] %-24s fused+graphs vs unfused eager (%s, 3 calls) %.2e, launches %lld -> %lld\n",
                GetParam().c_str(), level == Level::kReference ? "fp32" : "bf16", worst,
                static_cast<long long>(launches[1]), static_cast<long long>(launches[0]));
  }
}

// Outputs of 1 MiB and more come back in pinned host memory that is reused once released: a
// result the caller still holds must never be overwritten by a later call, and a reused block
// must give the same values as a fresh one.
TEST(CudaRuntime, LargeOutputsStayValidAcrossCalls) {
  KPT_REQUIRE_GPU();
  auto s = open_session(fixtures_dir() / "llama_gqa3_headdim", "cuda:0", Level::kBalanced);
  auto batch_of = [](int64_t seed) {
    ForwardInputs in;
    for (int64_t b = 0; b < 16; ++b) {
      std::vector<int64_t> row;
      for (int64_t t = 0; t < 100; ++t) row.push_back((seed * 131 + b * 17 + t * 7) % 251);
      in.input_ids.push_back(row);
    }
    return in;
  };
  Tensor a = s->forward(batch_of(1));
  ASSERT_GE(a.size_bytes(), size_t{1} << 20) << "the output must be large enough for the pinned path";
  const std::vector<float> a_values = a.to_f32_vector();
  Tensor b = s->forward(batch_of(2));
  EXPECT_EQ(a.to_f32_vector(), a_values) << "a later call overwrote an output still held";
  EXPECT_NE(b.to_f32_vector(), a_values);
  EXPECT_NE(a.raw(), b.raw());
  a = Tensor();
  b = Tensor();
  for (int i = 0; i < 10; ++i) {  // blocks released and reused (the pool keeps at most 8)
    Tensor again = s->forward(batch_of(1));
    EXPECT_EQ(again.to_f32_vector(), a_values) << "call " << i;
  }
  std::vector<Tensor> held;  // more held outputs than pooled blocks: the rest copy to pageable memory
  for (int i = 0; i < 10; ++i) held.push_back(s->forward(batch_of(1)));
  for (const Tensor& t : held) EXPECT_EQ(t.to_f32_vector(), a_values);
}

// Runs everywhere: without a GPU the CUDA build must say so clearly; with one, a bad ordinal.
TEST(CudaRuntime, UnavailableDeviceErrorsClearly) {
  const auto dir = fixtures_dir() / "gpt2_inner";
  EngineOptions eo;
  eo.device = cuda::device_count() == 0 ? "cuda" : "cuda:99";
  try {
    auto engine = Engine::load(dir.string(), eo);
    FAIL() << "loading on " << eo.device << " should fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported) << e.what();
    EXPECT_NE(std::string(e.what()).find(eo.device), std::string::npos) << e.what();
  }
  eo.device = "auto";
  auto engine = Engine::load(dir.string(), eo);
  EXPECT_EQ(engine->device(), cuda::device_count() == 0 ? "cpu" : "cuda:0");
}

}  // namespace kpt::test
