// Request parsing: every kind of bad input gets a 400 naming the parameter; good input parses.
#include <gtest/gtest.h>

#include "serve/metrics.h"
#include "serve/pooling.h"
#include "serve/protocol.h"
#include "serve/server.h"

namespace kpt::serve {
namespace {

Limits limits() {
  Limits l;
  l.max_tokens = 100;
  l.context = 512;
  l.vocab_size = 1000;
  return l;
}

void expect_400(const std::string& body, const std::string& param, const std::string& words, bool chat = false) {
  try {
    Json j = parse_json_body(body);
    if (chat) {
      parse_chat(j, limits());
    } else {
      parse_completion(j, limits());
    }
    ADD_FAILURE() << "accepted: " << body;
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.param, param) << body << " -> " << e.what();
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << body << " -> " << e.what();
    EXPECT_EQ(e.body()["error"]["type"], "invalid_request_error");
  }
}

TEST(Protocol, BadRequestsName400) {
  expect_400("", "", "empty");
  expect_400("{\"model\": \"m\", \"prompt\": ", "", "not valid JSON");
  expect_400("[1, 2]", "", "JSON object");
  expect_400("{\"prompt\": \"hi\"}", "model", "required");
  expect_400("{\"model\": 3, \"prompt\": \"hi\"}", "model", "must be a string");
  expect_400("{\"model\": \"m\"}", "prompt", "required");
  expect_400("{\"model\": \"m\", \"prompt\": 5}", "prompt", "string or an array");
  expect_400("{\"model\": \"m\", \"prompt\": []}", "prompt", "empty");
  expect_400("{\"model\": \"m\", \"prompt\": [1, 5000]}", "prompt", "out of range");
  expect_400("{\"model\": \"m\", \"prompt\": [1, \"x\"]}", "prompt", "integers");
  expect_400("{\"model\": \"m\", \"prompt\": \"hi\", \"max_tokens\": \"5\"}", "max_tokens", "integer");
  expect_400("{\"model\": \"m\", \"prompt\": \"hi\", \"max_tokens\": 101}", "max_tokens", "between 1 and 100");
  expect_400("{\"model\": \"m\", \"prompt\": \"hi\", \"max_tokens\": 0}", "max_tokens", "between");
  expect_400("{\"model\": \"m\", \"prompt\": \"hi\", \"temperature\": 3}", "temperature", "between 0 and 2");
  expect_400("{\"model\": \"m\", \"prompt\": \"hi\", \"temperature\": \"hot\"}", "temperature", "number");
  expect_400("{\"model\": \"m\", \"prompt\": \"hi\", \"top_p\": 0}", "top_p", "greater than 0");
  expect_400("{\"model\": \"m\", \"prompt\": \"hi\", \"n\": 2}", "n", "must be 1");
  expect_400("{\"model\": \"m\", \"prompt\": \"hi\", \"stop\": [1]}", "stop", "strings");
  expect_400("{\"model\": \"m\", \"prompt\": \"hi\", \"stop\": [\"\"]}", "stop", "empty");
  expect_400("{\"model\": \"m\", \"prompt\": \"hi\", \"stream\": \"yes\"}", "stream", "boolean");
  expect_400("{\"model\": \"m\", \"prompt\": \"hi\", \"logprobs\": 3}", "logprobs", "not supported");
  expect_400("{\"model\": \"m\", \"prompt\": \"hi\", \"presence_penalty\": 0.5}", "presence_penalty", "not supported");
  expect_400("{\"model\": \"m\", \"prompt\": \"hi\", \"seed\": 1.5}", "seed", "integer");
  expect_400("{\"model\": \"m\", \"prompt\": \"hi\", \"ignore_eos\": 1}", "ignore_eos", "boolean");
  expect_400("{\"model\": \"m\"}", "messages", "required", true);
  expect_400("{\"model\": \"m\", \"messages\": []}", "messages", "non-empty", true);
  expect_400("{\"model\": \"m\", \"messages\": [\"hi\"]}", "messages[0]", "object", true);
  expect_400("{\"model\": \"m\", \"messages\": [{\"content\": \"hi\"}]}", "messages[0].role", "string", true);
  expect_400("{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": 5}]}", "messages[0].content",
             "string or an array", true);
  expect_400("{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}",
             "messages[0].content", "only text", true);
}

TEST(Protocol, GoodRequestsParse) {
  auto c = parse_completion(parse_json_body(R"({"model": "m", "prompt": ["a", [1, 2]], "max_tokens": 7,
      "temperature": 0, "stop": "\n", "seed": 42, "stream": true, "stream_options": {"include_usage": true},
      "top_k": -1, "user": "ignored", "n": 1, "logprobs": null})"),
                            limits());
  ASSERT_EQ(c.prompts.size(), 2u);
  EXPECT_EQ(std::get<std::string>(c.prompts[0]), "a");
  EXPECT_EQ(std::get<std::vector<int64_t>>(c.prompts[1]), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(c.max_tokens, 7);
  EXPECT_EQ(c.temperature, 0.0);
  EXPECT_EQ(c.stop, std::vector<std::string>{"\n"});
  EXPECT_EQ(c.seed, 42u);
  EXPECT_TRUE(c.stream && c.include_usage);
  EXPECT_EQ(c.top_k, 0);
  auto chat = parse_chat(parse_json_body(R"({"model": "m", "max_completion_tokens": 9,
      "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "t"}]}],
      "chat_template_kwargs": {"enable_thinking": false}})"),
                         limits());
  EXPECT_EQ(chat.max_tokens, 9);
  EXPECT_EQ(chat.messages.size(), 2u);
  EXPECT_EQ(chat.template_extra["enable_thinking"], false);
  auto e = parse_embeddings(parse_json_body(R"({"model": "m", "input": ["x", "y"], "encoding_format": "base64"})"),
                            limits());
  EXPECT_EQ(e.inputs.size(), 2u);
  EXPECT_TRUE(e.base64);
}

TEST(Protocol, Base64FloatsIsLittleEndianFloat32) {
  EXPECT_EQ(base64_floats({1.0f}), "AACAPw==");
  EXPECT_EQ(base64_floats({1.0f, -2.0f}), "AACAPwAAAMA=");
  EXPECT_EQ(base64_floats({}), "");
}

TEST(Protocol, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("secret-key", "secret-key"));
  EXPECT_FALSE(constant_time_equal("secret-key", "secret-kez"));
  EXPECT_FALSE(constant_time_equal("secret-key", "secret-key2"));
  EXPECT_FALSE(constant_time_equal("", "x"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(Protocol, ContractsSetPortsAndRoutes) {
  ServeOptions o;
  o.contract = Contract::kSageMaker;
  apply_contract_defaults(o, false, false);
  EXPECT_EQ(o.host, "0.0.0.0");
  EXPECT_EQ(o.port, 8080);
  ServeOptions v;
  v.contract = Contract::kVertex;
  setenv("AIP_HTTP_PORT", "9123", 1);
  setenv("AIP_PREDICT_ROUTE", "/v1/endpoints/e/deployedModels/d:predict", 1);
  apply_contract_defaults(v, true, false);
  EXPECT_EQ(v.host, "127.0.0.1");
  EXPECT_EQ(v.port, 9123);
  EXPECT_EQ(v.predict_route, "/v1/endpoints/e/deployedModels/d:predict");
  setenv("AIP_HTTP_PORT", "http", 1);
  EXPECT_THROW(apply_contract_defaults(v, true, false), Error);
  unsetenv("AIP_HTTP_PORT");
  unsetenv("AIP_PREDICT_ROUTE");
  EXPECT_THROW(parse_contract("azure"), Error);
}

TEST(Pooling, MeanClsAndNormalize) {
  // [2, 3, 2]: row 1 has one padding token.
  Tensor h = Tensor::from_f32(std::vector<float>{1, 2, 3, 4, 100, 100, 3, 4, 5, 6, 7, 8}, {2, 3, 2});
  std::vector<std::vector<int64_t>> mask{{1, 1, 0}, {1, 1, 1}};
  Pooling mean;
  mean.normalize = false;
  auto v = mean.apply(h, mask);
  EXPECT_FLOAT_EQ(v[0][0], 2.f);
  EXPECT_FLOAT_EQ(v[0][1], 3.f);
  EXPECT_FLOAT_EQ(v[1][0], 5.f);
  Pooling cls{Pooling::Mode::kCls, true};
  auto c = cls.apply(h, mask);
  EXPECT_FLOAT_EQ(c[1][0], 0.6f);
  EXPECT_FLOAT_EQ(c[1][1], 0.8f);
  const Pooling plain = Pooling::from_model_dir("/nonexistent");  // no sentence-transformers files
  EXPECT_EQ(plain.mode, Pooling::Mode::kMean);
  EXPECT_TRUE(plain.normalize);
}

TEST(Metrics, PrometheusTextFormat) {
  Metrics m;
  m.count_request("/v1/completions", 200);
  m.count_request("/v1/completions", 400);
  m.observe_ttft(0.02);
  m.observe_ttft(7);
  m.count_tokens(10, 3);
  SchedulerGauges g;
  g.kv_blocks_used = 3;
  g.kv_blocks_capacity = 12;
  const std::string text = m.render(g, true);
  EXPECT_NE(text.find("kpt_requests_total{route=\"/v1/completions\",status=\"400\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("kpt_request_errors_total 1"), std::string::npos);
  EXPECT_NE(text.find("kpt_time_to_first_token_seconds_bucket{le=\"0.025\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("kpt_time_to_first_token_seconds_bucket{le=\"10\"} 2"), std::string::npos);
  EXPECT_NE(text.find("kpt_time_to_first_token_seconds_count 2"), std::string::npos);
  EXPECT_NE(text.find("kpt_kv_cache_usage_ratio 0.2500"), std::string::npos);
  EXPECT_NE(text.find("kpt_generation_tokens_total 3"), std::string::npos);
  EXPECT_NE(text.find("# TYPE kpt_batch_size histogram"), std::string::npos);
}

}  // namespace
}  // namespace kpt::serve
