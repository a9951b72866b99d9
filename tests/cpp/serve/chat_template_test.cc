// ChatTemplate: finding a model's template and special tokens, rendering like transformers'
// apply_chat_template(tokenize=False), and the render-time budget.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "kpt/status.h"
#include "serve/template/chat_template.h"

namespace {

namespace fs = std::filesystem;
using kpt::serve::ChatTemplate;
using nlohmann::ordered_json;

const char* kChatMl =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' "
    "}}{% endif %}";

class ModelDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kpt_chat_template_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  fs::path dir_;
};

ordered_json msgs(const char* json) {
  return ordered_json::parse(json);
}

TEST(ChatTemplate, RendersChatMlWithGenerationPrompt) {
  auto t = ChatTemplate::from_string(kChatMl);
  auto m =
      msgs(R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])");
  EXPECT_EQ(t.render(m, true),
            "<|im_start|>system\nBe "
            "brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t.render(m, false),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, ToolsAndDocumentsAreNoneUnlessGiven) {
  // transformers passes tools=None and documents=None explicitly: defined, but none.
  auto t = ChatTemplate::from_string(
      "{{ tools is defined }}{{ tools is none }}{{ documents is none }}{{ bos_token is defined "
      "}}{{ eos_token }}|"
      "{% if tools %}{{ tools|map(attribute='name')|join(',') }}{% endif %}{{ date_string }}",
      "", "</s>");
  EXPECT_EQ(t.render(msgs("[]"), false), "TrueTrueTrueFalse</s>|");
  EXPECT_EQ(t.render(msgs("[]"), false,
                     ordered_json::parse(
                         R"({"tools": [{"name": "a"}, {"name": "b"}], "date_string": "1 Jan"})")),
            "TrueFalseTrueFalse</s>|a,b1 Jan");
}

TEST(ChatTemplate, ContentPartsPassThrough) {
  auto t = ChatTemplate::from_string(
      "{% for m in messages %}{% if m.content is string %}{{ m.content }}{% else %}"
      "{% for p in m.content %}[{{ p.type }}:{{ p.text }}]{% endfor %}{% endif %}{% endfor %}");
  EXPECT_EQ(
      t.render(
          msgs(
              R"([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])"),
          false),
      "[text:a][text:b]");
}

TEST(ChatTemplate, RaiseExceptionIsInvalidArgumentWithTheMessage) {
  auto t = ChatTemplate::from_string(
      "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% "
      "endif %}");
  try {
    t.render(msgs(R"([{"role": "system", "content": "x"}])"), true);
    FAIL() << "expected an error";
  } catch (const kpt::Error& e) {
    EXPECT_EQ(e.code(), kpt::ErrorCode::kInvalidArgument);
    EXPECT_STREQ(e.what(), "System role not supported");
  }
  EXPECT_THROW(t.render(ordered_json::object(), true), kpt::Error);  // messages must be a list
}

TEST_F(ModelDir, PrefersChatTemplateJinjaAndReadsTokenObjects) {
  write("chat_template.jinja", "{{ bos_token }}J{{ eos_token }}\n");
  write(
      "tokenizer_config.json",
      R"({"chat_template": "C", "bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>", "unk_token": null})");
  auto t = ChatTemplate::from_model_dir(dir_.string());
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->render(msgs("[]"), false), "<s>J</s>");
  ASSERT_EQ(t->special_tokens().size(), 2u);
}

TEST_F(ModelDir, TokenizerConfigStringAndNamedList) {
  write("tokenizer_config.json",
        R"({"chat_template": "S{{ messages|length }}", "eos_token": "</s>"})");
  EXPECT_EQ(ChatTemplate::from_model_dir(dir_.string())->render(msgs("[1, 2]"), false), "S2");
  write(
      "tokenizer_config.json",
      R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})");
  auto t = ChatTemplate::from_model_dir(dir_.string());
  EXPECT_EQ(t->render(msgs("[]"), false), "D");
  EXPECT_EQ(t->render(msgs("[]"), false, ordered_json::parse(R"({"tools": [{}]})")), "T");
  EXPECT_EQ(t->source(), "D");
}

TEST_F(ModelDir, NoTemplateIsNullopt) {
  EXPECT_FALSE(ChatTemplate::from_model_dir(dir_.string()).has_value());
  write("tokenizer_config.json", R"({"eos_token": "</s>"})");
  EXPECT_FALSE(ChatTemplate::from_model_dir(dir_.string()).has_value());
}

TEST_F(ModelDir, MalformedFilesAreInvalidFileNamingTheFile) {
  write("tokenizer_config.json", R"({"chat_template": "{% if %}"})");
  try {
    ChatTemplate::from_model_dir(dir_.string());
    FAIL() << "expected an error";
  } catch (const kpt::Error& e) {
    EXPECT_EQ(e.code(), kpt::ErrorCode::kInvalidFile);
    EXPECT_NE(std::string(e.what()).find(
                  "tokenizer_config.json: chat template: template syntax error at 1:7"),
              std::string::npos)
        << e.what();
  }
  write("tokenizer_config.json", "{not json");
  try {
    ChatTemplate::from_model_dir(dir_.string());
    FAIL() << "expected an error";
  } catch (const kpt::Error& e) {
    EXPECT_EQ(e.code(), kpt::ErrorCode::kInvalidFile);
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json: malformed JSON"),
              std::string::npos);
  }
  write("tokenizer_config.json", R"({"chat_template": [{"name": "other", "template": "x"}]})");
  EXPECT_THROW(ChatTemplate::from_model_dir(dir_.string()), kpt::Error);
  write("tokenizer_config.json", R"({"chat_template": 5})");
  EXPECT_THROW(ChatTemplate::from_model_dir(dir_.string()), kpt::Error);
  write("tokenizer_config.json", R"({})");
  write("chat_template.jinja", "{{ x");
  try {
    ChatTemplate::from_model_dir(dir_.string());
    FAIL() << "expected an error";
  } catch (const kpt::Error& e) {
    EXPECT_EQ(e.code(), kpt::ErrorCode::kInvalidFile);
    EXPECT_NE(std::string(e.what()).find("chat_template.jinja"), std::string::npos);
  }
}

TEST(ChatTemplate, RealSmolLm2TemplateWhenPrepared) {
  const fs::path dir = fs::path(KPT_SOURCE_DIR) / "models" / "smollm2-135m";
  if (!fs::exists(dir / "chat_template.jinja")) GTEST_SKIP() << dir << " not prepared";
  auto t = ChatTemplate::from_model_dir(dir.string());
  ASSERT_TRUE(t.has_value());
  std::string out = t->render(msgs(R"([{"role": "user", "content": "Hi"}])"), true);
  EXPECT_NE(out.find("<|im_start|>user\nHi<|im_end|>\n"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.size() - 22), "<|im_start|>assistant\n");
}

// One ChatTemplate serves concurrent requests: render() is const and shares only immutable state.
TEST(ChatTemplate, ConcurrentRendersMatchSerial) {
  auto t = ChatTemplate::from_string(
      "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
      "{{ loop.index }}:{{ m.role|upper }}={{ m.content|tojson }};{% endfor %}{{ ns.n }}");
  auto m =
      msgs(R"([{"role": "user", "content": "héllo"}, {"role": "assistant", "content": "x\ny"}])");
  const std::string want = t.render(m, false);
  EXPECT_EQ(want, "1:USER=\"héllo\";2:ASSISTANT=\"x\\ny\";2");
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      for (int i = 0; i < 200; ++i) bad[static_cast<size_t>(k)] += t.render(m, false) != want;
    });
  }
  for (auto& th : threads) th.join();
  for (int b : bad) EXPECT_EQ(b, 0);
}

// Rendering must stay far below a millisecond for typical conversations; the bound here is loose
// (10 ms, for sanitizer and debug builds and busy CI machines); docs/chat_templates.md has numbers.
TEST(ChatTemplate, RenderTimeBudget) {
  const fs::path path =
      fs::path(KPT_SOURCE_DIR) / "tests" / "fixtures" / "chat_templates" / "qwen25_tools.jinja";
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto t = ChatTemplate::from_string(ss.str());
  ordered_json m = ordered_json::array();
  m.push_back({{"role", "system"}, {"content", "You are a helpful assistant."}});
  for (int i = 0; i < 5; ++i) {
    m.push_back({{"role", "user"},
                 {"content", "Question number " + std::to_string(i) + " about something."}});
    m.push_back({{"role", "assistant"},
                 {"content", "Answer number " + std::to_string(i) + ", with some detail."}});
  }
  const int n = 200;
  auto start = std::chrono::steady_clock::now();
  size_t total = 0;
  for (int i = 0; i < n; ++i) total += t.render(m, true).size();
  double per_render_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() /
      n;
  EXPECT_GT(total, 0u);
  EXPECT_LT(per_render_ms, 10.0);
  std::printf("qwen25_tools, 11 messages: %.4f ms per render\n", per_render_ms);
}

}  // namespace
