#include <gtest/gtest.h>

#include "io/hf_config.h"
#include "models/common.h"

namespace kpt::io {

namespace {
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(HfConfig, TypedGettersNameKeyAndSource) {
  auto c = HfConfig::parse(R"({"model_type":"llama","hidden_size":"64","eos_token_id":[1,2],"x":null,"f":2.0})", "cfg.json");
  EXPECT_EQ(c.model_type(), "llama");
  std::string msg = error_of([&] { c.get_int("hidden_size"); });
  EXPECT_NE(msg.find("cfg.json"), std::string::npos);
  EXPECT_NE(msg.find("'hidden_size' must be an integer"), std::string::npos) << msg;
  EXPECT_EQ(c.get_int_list("eos_token_id"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(c.get_int("x", 7), 7);  // null means absent
  EXPECT_EQ(c.get_int("f"), 2);     // 2.0 is an integer
  EXPECT_NE(error_of([&] { c.get_int("missing"); }).find("missing integer key 'missing'"), std::string::npos);
}

TEST(HfConfig, MalformedJson) {
  EXPECT_NE(error_of([] { HfConfig::parse("{", "c.json"); }).find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of([] { HfConfig::parse("[]", "c.json"); }).find("must be a JSON object"), std::string::npos);
  EXPECT_NE(error_of([] { HfConfig::parse("{}", "c.json").model_type(); }).find("model_type"), std::string::npos);
}

TEST(HfConfig, RopeBothGenerations) {
  // transformers 4.x keys
  auto v4 = HfConfig::parse(R"({"model_type":"llama","rope_theta":500000.0,
      "rope_scaling":{"type":"linear","factor":4.0}})", "c");
  auto r4 = models::parse_rope_config(v4, 10000.0);
  EXPECT_EQ(r4.type, "linear");
  EXPECT_EQ(r4.theta, 500000.0);
  EXPECT_EQ(r4.factor, 4.0);
  // transformers 5.x keys
  auto v5 = HfConfig::parse(R"({"model_type":"llama","rope_parameters":{"rope_type":"llama3","rope_theta":500000.0,
      "factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}})", "c");
  auto r5 = models::parse_rope_config(v5, 10000.0);
  EXPECT_EQ(r5.type, "llama3");
  EXPECT_EQ(r5.original_max_positions, 8192);
  auto inv = models::rope_inv_freq(r5, 64);
  auto plain = models::rope_inv_freq(models::RopeConfig{500000.0}, 64);
  EXPECT_EQ(inv[0], plain[0]);                  // high frequencies untouched
  EXPECT_NEAR(inv[31], plain[31] / 8.0, 1e-12 * plain[31]);  // low frequencies divided by factor
  auto yarn = HfConfig::parse(R"({"model_type":"llama","rope_scaling":{"rope_type":"yarn","factor":4.0}})", "c");
  EXPECT_NE(error_of([&] { models::parse_rope_config(yarn, 1e4); }).find("'yarn' is not supported"), std::string::npos);
  auto bad = HfConfig::parse(R"({"model_type":"llama","rope_scaling":{"type":"linear"}})", "c");
  EXPECT_NE(error_of([&] { models::parse_rope_config(bad, 1e4); }).find("factor"), std::string::npos);
}

TEST(Glob, Matches) {
  EXPECT_TRUE(models::glob_match("h.*.attn.bias", "h.11.attn.bias"));
  EXPECT_FALSE(models::glob_match("h.*.attn.bias", "h.11.attn.c_attn.bias"));
  EXPECT_TRUE(models::glob_match("pooler.*", "pooler.dense.weight"));
  EXPECT_FALSE(models::glob_match("pooler.*", "bert.pooler.dense.weight"));
}

}  // namespace kpt::io
