// fp32 parity with transformers (float64 references made by tests/fixtures/make_fixtures.py) and
// greedy continuations identical to transformers' generate.
#include <gtest/gtest.h>

#include "io/npy.h"
#include "test_util.h"

namespace kpt::test {

class Parity : public ::testing::TestWithParam<std::string> {};

TEST_P(Parity, ForwardMatchesTransformers) {
  const auto dir = fixtures_dir() / GetParam();
  auto engine = Engine::load(dir.string());
  int n_cases = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("forward_", 0) != 0 || e.path().extension() != ".json") continue;
    const std::string stem = e.path().stem().string();
    SCOPED_TRACE(stem);
    ForwardInputs in = inputs_from_json(read_json(e.path()));
    Tensor ours = engine->forward(in);
    Tensor ref = io::read_npy((dir / (stem + "_expected.npy")).string());
    ASSERT_EQ(ours.shape(), ref.shape());
    auto mask = in.attention_mask.empty()
                    ? std::vector<std::vector<int64_t>>(in.input_ids.size(), std::vector<int64_t>(in.input_ids[0].size(), 1))
                    : in.attention_mask;
    Diff d = masked_diff(ours.data<float>(), ref.data<float>(), mask, ours.dim(-1));
    EXPECT_GT(d.max_ref, 0.0);
    EXPECT_LE(d.rel(), tolerance("fp32_vs_transformers"))
        << "max abs error " << d.max_abs << " vs max |reference| " << d.max_ref;
    ++n_cases;
  }
  EXPECT_GE(n_cases, 3) << "fixture " << GetParam() << " should have single, right and left padded inputs";
}

TEST_P(Parity, GreedyMatchesTransformersGenerate) {
  const auto dir = fixtures_dir() / GetParam();
  if (!std::filesystem::exists(dir / "generate.json")) GTEST_SKIP() << "encoder: no generation";
  auto engine = Engine::load(dir.string());
  auto g = read_json(dir / "generate.json");
  GenerateOptions opts;
  opts.max_new_tokens = g.at("max_new_tokens").get<int64_t>();
  opts.eos_token_ids = std::vector<int64_t>{};  // the reference never stops early
  auto prompt = g.at("prompt_ids").get<std::vector<int64_t>>();
  GenerateResult r = engine->generate({prompt}, opts);
  EXPECT_EQ(r.new_ids[0], g.at("new_ids").get<std::vector<int64_t>>());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Parity, ::testing::ValuesIn(fixture_cases()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Parity);

TEST(Fixtures, Present) {
  EXPECT_GE(fixture_cases().size(), 8u) << "tests/fixtures/models is incomplete; run tests/fixtures/make_fixtures.py";
}

}  // namespace kpt::test
