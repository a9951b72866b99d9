// Random-weight checkpoints: the layouts of the five official configs have the published
// parameter counts, and a small random checkpoint of each family loads and runs in the engine.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "bench/random_model.h"
#include "bench/runner.h"
#include "kpt/engine.h"
#include "kpt/status.h"

namespace kpt::bench {
namespace {

namespace fs = std::filesystem;

nlohmann::json read_config(const std::string& name) {
  std::ifstream f(fs::path(KPT_SOURCE_DIR) / "benchmarks" / "configs" / name);
  return nlohmann::json::parse(f);
}

int64_t count(const std::vector<RandomTensor>& layout) {
  int64_t n = 0;
  for (const auto& t : layout) {
    int64_t k = 1;
    for (int64_t d : t.shape) k *= d;
    n += k;
  }
  return n;
}

TEST(RandomModel, OfficialConfigsHaveThePublishedParameterCounts) {
  // Base-model parameters as transformers counts them (no pooler / task head; tied heads once).
  EXPECT_EQ(count(random_checkpoint_layout(read_config("bert-base-uncased.json"))), 108891648);
  EXPECT_EQ(count(random_checkpoint_layout(read_config("all-MiniLM-L6-v2.json"))), 22565376);
  EXPECT_EQ(count(random_checkpoint_layout(read_config("gpt2.json"))), 124439808);
  EXPECT_EQ(count(random_checkpoint_layout(read_config("DialoGPT-medium.json"))), 354823168);
  EXPECT_EQ(count(random_checkpoint_layout(read_config("TinyLlama-1.1B-Chat-v1.0.json"))),
            1100048384);
}

// The official configs shrunk to 2 small layers, so every family loads quickly.
nlohmann::json shrink(nlohmann::json c) {
  if (c["model_type"] == "gpt2") {
    c["n_layer"] = 2;
    c["n_embd"] = 48;
    c["n_head"] = 4;
    c["vocab_size"] = 101;
    c["n_positions"] = 64;
  } else {
    c["num_hidden_layers"] = 2;
    c["hidden_size"] = 64;
    c["intermediate_size"] = 96;
    c["num_attention_heads"] = 4;
    if (c.contains("num_key_value_heads")) c["num_key_value_heads"] = 2;
    c["vocab_size"] = 101;
    c["max_position_embeddings"] = 64;
  }
  return c;
}

TEST(RandomModel, EachFamilyLoadsAndRuns) {
  const fs::path root =
      fs::temp_directory_path() / ("kpt_random_model_" + std::to_string(::getpid()));
  for (const char* name :
       {"bert-base-uncased.json", "gpt2.json", "TinyLlama-1.1B-Chat-v1.0.json"}) {
    const fs::path dir = root / name;
    write_random_checkpoint(shrink(read_config(name)), dir.string(), 3);
    auto engine = Engine::load(dir.string());
    ForwardInputs in;
    in.input_ids = {{1, 2, 3, 4, 5}};
    Tensor out = engine->forward(in);
    EXPECT_EQ(out.dim(1), 5) << name;
    const float* p = out.data<float>();
    for (int64_t i = 0; i < out.numel(); ++i) ASSERT_TRUE(std::isfinite(p[i])) << name;
  }
  fs::remove_all(root);
}

TEST(RandomModel, SameSeedSameBytes) {
  const fs::path root =
      fs::temp_directory_path() / ("kpt_random_seed_" + std::to_string(::getpid()));
  const auto c = shrink(read_config("gpt2.json"));
  write_random_checkpoint(c, (root / "a").string(), 5);
  write_random_checkpoint(c, (root / "b").string(), 5);
  write_random_checkpoint(c, (root / "c").string(), 6);
  auto bytes = [](const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  EXPECT_EQ(bytes(root / "a" / "model.safetensors"), bytes(root / "b" / "model.safetensors"));
  EXPECT_NE(bytes(root / "a" / "model.safetensors"), bytes(root / "c" / "model.safetensors"));
  fs::remove_all(root);
}

TEST(RandomModel, UnsupportedTypeIsClear) {
  try {
    random_checkpoint_layout({{"model_type", "t5"}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'t5' is not supported"), std::string::npos);
  }
}

TEST(Runner, MeasuresAFixtureModel) {
  WorkloadSpec s;
  s.name = "gpt2_inner";
  s.model_dir =
      (fs::path(KPT_SOURCE_DIR) / "tests" / "fixtures" / "models" / "gpt2_inner").string();
  s.kind = "generate";
  s.prompt_len = 3;
  s.new_tokens = 4;
  s.repeat = 3;
  s.warmup = 1;
  s.threads = 1;
  int calls = 0;
  const WorkloadResult r = run_workload(s, [&](int, int, const std::string&) { ++calls; });
  EXPECT_GT(calls, 4);
  EXPECT_EQ(r.metrics.at("latency_ms").samples.size(), 3u);
  EXPECT_EQ(r.metrics.at("ttft_ms").samples.size(), 3u);
  EXPECT_EQ(r.metrics.at("itl_ms").samples.size(), 9u);  // 3 gaps between 4 tokens, 3 repeats
  EXPECT_GT(r.metrics.at("peak_rss_bytes").samples[0], 0);
  s.kind = "forward";
  s.seq = 7;
  const WorkloadResult f = run_workload(s);
  EXPECT_EQ(f.metrics.at("throughput_seq_s").samples.size(), 3u);
  s.seq = 100000;
  EXPECT_THROW(run_workload(s), Error);  // beyond the model's positions, said clearly
}

}  // namespace
}  // namespace kpt::bench
