// Every input a caller can get wrong gets a kpt::Error naming what was wrong.
#include <filesystem>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "test_util.h"

namespace kpt::test {

namespace fs = std::filesystem;

namespace {

struct ModelCopy {
  fs::path path;
  explicit ModelCopy(const std::string& fixture) {
    path = fs::temp_directory_path() / ("kpt_bad_" + fixture + "_" + std::to_string(std::random_device{}()));
    fs::create_directories(path);
    for (const auto& e : fs::directory_iterator(fixtures_dir() / fixture)) fs::copy(e.path(), path / e.path().filename());
  }
  ~ModelCopy() { fs::remove_all(path); }
  void edit_config(const std::function<void(nlohmann::json&)>& f) const {
    auto j = read_json(path / "config.json");
    f(j);
    std::ofstream(path / "config.json") << j.dump(2);
  }
  // Rewrites model.safetensors through `f`, which edits the name -> tensor list.
  void edit_weights(const std::function<void(std::vector<std::pair<std::string, Tensor>>&)>& f) const {
    std::vector<std::pair<std::string, Tensor>> tensors;
    {
      auto file = io::SafetensorsFile::open((path / "model.safetensors").string());
      for (const auto& t : file->header().tensors) {
        Tensor src = file->get(t.name);
        Tensor copy = Tensor::empty(src.dtype(), src.shape());
        std::memcpy(copy.raw(), src.raw(), src.size_bytes());
        tensors.emplace_back(t.name, copy);
      }
    }
    f(tensors);
    io::write_safetensors((path / "model.safetensors").string(), tensors);
  }
};

template <typename F>
void expect_error(F&& f, ErrorCode code, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(static_cast<int>(e.code()), static_cast<int>(code)) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(BadInput, UnknownModelType) {
  ModelCopy m("gpt2_inner");
  m.edit_config([](auto& j) { j["model_type"] = "mamba"; });
  expect_error([&] { Engine::load(m.path.string()); }, ErrorCode::kUnsupported, "model_type 'mamba' is not supported");
}

TEST(BadInput, MissingModelDirAndConfig) {
  expect_error([] { Engine::load("/nonexistent/model"); }, ErrorCode::kNotFound, "does not exist");
  ModelCopy m("gpt2_inner");
  fs::remove(m.path / "config.json");
  expect_error([&] { Engine::load(m.path.string()); }, ErrorCode::kNotFound, "config.json");
}

TEST(BadInput, ConfigWithWrongTypes) {
  ModelCopy m("llama_gqa3_headdim");
  m.edit_config([](auto& j) { j["num_hidden_layers"] = "two"; });
  expect_error([&] { Engine::load(m.path.string()); }, ErrorCode::kInvalidFile, "'num_hidden_layers' must be an integer");
}

TEST(BadInput, ConfigDisagreesWithWeights) {
  ModelCopy m("llama_gqa3_headdim");
  m.edit_config([](auto& j) { j["intermediate_size"] = 64; });
  expect_error([&] { Engine::load(m.path.string()); }, ErrorCode::kInvalidFile, "wrong shapes");
}

TEST(BadInput, MissingTensor) {
  ModelCopy m("qwen2_tied_bias");
  m.edit_weights([](auto& t) {
    std::erase_if(t, [](const auto& p) { return p.first == "model.layers.1.self_attn.k_proj.bias"; });
  });
  expect_error([&] { Engine::load(m.path.string()); }, ErrorCode::kInvalidFile,
               "missing tensors: model.layers.1.self_attn.k_proj.bias");
}

TEST(BadInput, ExtraTensor) {
  ModelCopy m("bert_tokentypes");
  m.edit_weights([](auto& t) { t.emplace_back("encoder.layer.0.attention.self.rotary.weight", Tensor::empty(DType::kF32, {4})); });
  expect_error([&] { Engine::load(m.path.string()); }, ErrorCode::kInvalidFile,
               "unexpected tensors (not part of the bert schema): encoder.layer.0.attention.self.rotary.weight");
}

TEST(BadInput, NotAModelOfThisFamily) {
  ModelCopy m("gpt2_inner");
  m.edit_config([](auto& j) { j["model_type"] = "bert"; });
  expect_error([&] { Engine::load(m.path.string()); }, ErrorCode::kInvalidFile, "does not hold a bert model");
}

TEST(BadInput, CorruptSafetensors) {
  ModelCopy m("gpt2_inner");
  auto p = m.path / "model.safetensors";
  fs::resize_file(p, fs::file_size(p) - 100);
  expect_error([&] { Engine::load(m.path.string()); }, ErrorCode::kInvalidFile, "invalid safetensors file");
}

TEST(BadInput, ForwardInputs) {
  auto engine = Engine::load((fixtures_dir() / "gpt2_inner").string());
  const int64_t v = engine->info().vocab_size;
  expect_error([&] { engine->forward({{}, {}, {}}); }, ErrorCode::kInvalidArgument, "input_ids is empty");
  expect_error([&] { engine->forward({{{}}, {}, {}}); }, ErrorCode::kInvalidArgument, "row 0 is empty");
  expect_error([&] { engine->forward({{{1, 2, 3}, {1, 2}}, {}, {}}); }, ErrorCode::kInvalidArgument,
               "row 1 has 2 tokens but row 0 has 3");
  expect_error([&] { engine->forward({{{1, v}}, {}, {}}); }, ErrorCode::kOutOfRange,
               fmt::format("token id {} at input_ids[0][1] is out of range for vocab_size {}", v, v));
  expect_error([&] { engine->forward({{{1, -1}}, {}, {}}); }, ErrorCode::kOutOfRange, "token id -1");
  expect_error([&] { engine->forward({{{1, 2, 3}}, {{1, 1}}, {}}); }, ErrorCode::kInvalidArgument,
               "attention_mask row 0 has 2 entries but input_ids row 0 has 3");
  expect_error([&] { engine->forward({{{1, 2}}, {{1, 1}, {1, 1}}, {}}); }, ErrorCode::kInvalidArgument,
               "attention_mask has 2 rows but input_ids has 1");
  expect_error([&] { engine->forward({{{1, 2}}, {{1, 2}}, {}}); }, ErrorCode::kInvalidArgument,
               "attention_mask[0][1] is 2");
  expect_error([&] { engine->forward({{{1, 2}}, {{0, 0}}, {}}); }, ErrorCode::kInvalidArgument, "masks every token");
  expect_error([&] { engine->forward({{{1, 2}}, {}, {{0, 1}}}); }, ErrorCode::kOutOfRange, "has no token types");
  std::vector<int64_t> too_long(static_cast<size_t>(engine->info().max_positions + 1), 1);
  expect_error([&] { engine->forward({{too_long}, {}, {}}); }, ErrorCode::kOutOfRange, "max_position_embeddings");
}

TEST(BadInput, TokenTypesOutOfRange) {
  auto engine = Engine::load((fixtures_dir() / "bert_tokentypes").string());
  expect_error([&] { engine->forward({{{1, 2}}, {}, {{0, 2}}}); }, ErrorCode::kOutOfRange,
               "token_type_ids[0][1] is 2, out of range for type_vocab_size 2");
}

TEST(BadInput, GenerateOptions) {
  auto engine = Engine::load((fixtures_dir() / "gpt2_inner").string());
  GenerateOptions o;
  expect_error([&] { engine->generate({}, o); }, ErrorCode::kInvalidArgument, "no prompts");
  expect_error([&] { engine->generate({{}}, o); }, ErrorCode::kInvalidArgument, "prompt 0 is empty");
  o.do_sample = true;
  o.temperature = 0;
  expect_error([&] { engine->generate({{1}}, o); }, ErrorCode::kInvalidArgument, "temperature must be > 0");
  o.temperature = 1;
  o.top_p = 1.5;
  expect_error([&] { engine->generate({{1}}, o); }, ErrorCode::kInvalidArgument, "top_p must be in (0, 1]");
  o = {};
  o.max_new_tokens = engine->info().max_positions;
  expect_error([&] { engine->generate({{1, 2}}, o); }, ErrorCode::kOutOfRange, "exceeds the model's");
  auto bert = Engine::load((fixtures_dir() / "bert_tokentypes").string());
  expect_error([&] { bert->generate({{1}}, GenerateOptions{}); }, ErrorCode::kUnsupported, "needs a causal LM");
}

TEST(BadInput, LevelsAndDevices) {
  const auto dir = (fixtures_dir() / "gpt2_inner").string();
  expect_error([] { parse_level("fastest"); }, ErrorCode::kInvalidArgument, "unknown optimization level 'fastest'");
  EngineOptions o;
  o.device = "tpu";
  expect_error([&] { Engine::load(dir, o); }, ErrorCode::kInvalidArgument, "unknown device 'tpu'");
  o.device = "cuda:99";  // no machine has this GPU; a build without CUDA refuses every cuda device
  expect_error([&] { Engine::load(dir, o); }, ErrorCode::kUnsupported, "device 'cuda:99'");
}

}  // namespace kpt::test
