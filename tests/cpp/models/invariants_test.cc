// Invariants that hold for every model: KV-cache decode equals full recompute, a batch equals
// its rows run alone, padding side does not matter, greedy batched equals greedy single.
#include <gtest/gtest.h>

#include "io/hf_config.h"
#include "models/model.h"
#include "runtime/generator.h"
#include "runtime/sampler.h"
#include "runtime/session.h"
#include "test_util.h"

namespace kpt::test {

namespace {
std::unique_ptr<runtime::Session> open_session(const std::filesystem::path& dir) {
  auto cfg = io::HfConfig::load(dir.string());
  auto store = std::make_shared<io::WeightStore>(io::WeightStore::open_dir(dir.string()));
  return std::make_unique<runtime::Session>(models::build_model(cfg, *store), CompileOptions{});
}
}  // namespace

class Invariants : public ::testing::TestWithParam<std::string> {};

TEST_P(Invariants, KvCacheDecodeEqualsRecompute) {
  const auto dir = fixtures_dir() / GetParam();
  auto s = open_session(dir);
  if (!s->info().causal_lm) GTEST_SKIP() << "encoder";
  std::vector<int64_t> ids;
  for (int i = 0; i < 12; ++i) ids.push_back((i * 37 + 11) % s->info().vocab_size);
  // Full recompute: logits at every position in one pass.
  Tensor full = s->forward({{ids}, {}, {}});  // [1, 12, V]
  const int64_t vocab = s->info().vocab_size;
  // Incremental: prefill 5 tokens, then one token per step through the KV cache.
  int64_t seq = s->cache().new_sequence();
  const size_t prefill = 5;
  std::vector<int64_t> head(ids.begin(), ids.begin() + prefill);
  Tensor step = s->step_last_logits({seq}, {head}, {std::vector<int64_t>(prefill, 1)});
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
  EXPECT_EQ(s->cache().blocks_in_use(), 0) << "sequences must give their blocks back";
}

TEST_P(Invariants, BatchedEqualsSingle) {
  const auto dir = fixtures_dir() / GetParam();
  auto s = open_session(dir);
  for (const char* which : {"forward_right.json", "forward_left.json"}) {
    SCOPED_TRACE(which);
    ForwardInputs batch = inputs_from_json(read_json(dir / which));
    Tensor all = s->forward(batch);
    const int64_t dim = all.dim(-1), seq = all.dim(1);
    for (size_t r = 0; r < batch.input_ids.size(); ++r) {
      ForwardInputs one;
      std::vector<size_t> kept;
      for (size_t t = 0; t < batch.input_ids[r].size(); ++t) {
        if (!batch.attention_mask[r][t]) continue;
        kept.push_back(t);
      }
      std::vector<int64_t> ids, types;
      for (size_t t : kept) {
        ids.push_back(batch.input_ids[r][t]);
        if (!batch.token_type_ids.empty()) types.push_back(batch.token_type_ids[r][t]);
      }
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

TEST_P(Invariants, GreedyBatchedEqualsSingle) {
  const auto dir = fixtures_dir() / GetParam();
  auto engine = Engine::load(dir.string());
  if (!engine->info().causal_lm) GTEST_SKIP() << "encoder";
  const int64_t v = engine->info().vocab_size;
  std::vector<std::vector<int64_t>> prompts = {{3 % v, 17 % v, 29 % v, 5 % v, 8 % v}, {41 % v, 2 % v}, {7 % v, 7 % v, 100 % v}};
  GenerateOptions o;
  o.max_new_tokens = 10;
  o.eos_token_ids = std::vector<int64_t>{};
  GenerateResult batched = engine->generate(prompts, o);
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerateResult single = engine->generate({prompts[i]}, o);
    EXPECT_EQ(batched.new_ids[i], single.new_ids[0]) << "prompt " << i;
  }
}

// Sampling without a repetition penalty goes through Executable::run_sample (one uniform draw
// per row, the backend samples); it must give the tokens of the plain loop (the logits to the host,
// then Sampler::next) for the same seed: same draws, same order, same arithmetic. Two rows of
// different lengths, top-k with top-p, and top_k 0 (the whole vocabulary).
TEST_P(Invariants, SampledGenerateEqualsHostSamplerLoop) {
  const auto dir = fixtures_dir() / GetParam();
  auto s = open_session(dir);
  if (!s->info().causal_lm) GTEST_SKIP() << "encoder";
  const int64_t vocab = s->info().vocab_size;
  const std::vector<std::vector<int64_t>> prompts = {{5, 9, 17, 33, 2, 8}, {44, 12, 3}};
  for (int64_t top_k : {0, 7}) {
    SCOPED_TRACE(top_k);
    GenerateOptions o;
    o.max_new_tokens = 12;
    o.do_sample = true;
    o.temperature = 0.9;
    o.top_k = top_k;
    o.top_p = 0.8;
    o.seed = 11;
    o.eos_token_ids = std::vector<int64_t>{};
    const GenerateResult got = runtime::generate(*s, prompts, o, {});
    // The plain loop, left-padded as generate() pads.
    runtime::Sampler sampler(o.seed);
    const size_t width = prompts[0].size();
    runtime::Rows ids, mask;
    std::vector<std::vector<int64_t>> history = prompts, want(prompts.size());
    std::vector<int64_t> seqs;
    for (const auto& p : prompts) {
      std::vector<int64_t> row(width - p.size(), 0), m(width - p.size(), 0);
      row.insert(row.end(), p.begin(), p.end());
      m.insert(m.end(), p.size(), 1);
      ids.push_back(row);
      mask.push_back(m);
      seqs.push_back(s->cache().new_sequence());
    }
    for (int64_t step = 0; step < o.max_new_tokens; ++step) {
      Tensor logits = s->step_last_logits(seqs, ids, mask);
      ids.clear();
      mask.clear();
      for (size_t b = 0; b < prompts.size(); ++b) {
        std::span<float> row(logits.data<float>() + static_cast<int64_t>(b) * vocab, static_cast<size_t>(vocab));
        const int64_t tok = sampler.next(row, history[b], o);
        want[b].push_back(tok);
        history[b].push_back(tok);
        ids.push_back({tok});
        mask.push_back({1});
      }
    }
    for (int64_t q : seqs) s->cache().free_sequence(q);
    EXPECT_EQ(got.new_ids, want);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Invariants, ::testing::ValuesIn(fixture_cases()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Invariants);

}  // namespace kpt::test
