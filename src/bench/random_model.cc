#include "bench/random_model.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "kpt/status.h"

namespace kpt::bench {

namespace fs = std::filesystem;

namespace {

int64_t cfg_int(const nlohmann::json& c, const char* key, int64_t fallback) {
  auto it = c.find(key);
  return it != c.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}
int64_t cfg_int(const nlohmann::json& c, const char* key) {
  auto it = c.find(key);
  if (it == c.end() || !it->is_number_integer()) {
    throw Error(ErrorCode::kInvalidFile,
                fmt::format("config.json: '{}' (an integer) is missing", key));
  }
  return it->get<int64_t>();
}
bool cfg_bool(const nlohmann::json& c, const char* key, bool fallback) {
  auto it = c.find(key);
  return it != c.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

using Fill = RandomTensor::Fill;

void add_linear(std::vector<RandomTensor>& t, const std::string& name, int64_t out, int64_t in,
                bool bias) {
  t.push_back({name + ".weight", {out, in}});
  if (bias) t.push_back({name + ".bias", {out}, Fill::kZeros});
}
void add_norm(std::vector<RandomTensor>& t, const std::string& name, int64_t h, bool bias) {
  t.push_back({name + ".weight", {h}, Fill::kOnes});
  if (bias) t.push_back({name + ".bias", {h}, Fill::kZeros});
}

// splitmix64: fast, seedable, good enough to make weights that are not all equal.
struct SplitMix {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

std::vector<RandomTensor> random_checkpoint_layout(const nlohmann::json& c) {
  const std::string type = c.value("model_type", "");
  std::vector<RandomTensor> t;
  if (type == "bert") {
    const int64_t h = cfg_int(c, "hidden_size"), f = cfg_int(c, "intermediate_size"),
                  L = cfg_int(c, "num_hidden_layers");
    t.push_back({"embeddings.word_embeddings.weight", {cfg_int(c, "vocab_size"), h}});
    t.push_back(
        {"embeddings.position_embeddings.weight", {cfg_int(c, "max_position_embeddings", 512), h}});
    t.push_back({"embeddings.token_type_embeddings.weight", {cfg_int(c, "type_vocab_size", 2), h}});
    add_norm(t, "embeddings.LayerNorm", h, true);
    for (int64_t i = 0; i < L; ++i) {
      const std::string p = fmt::format("encoder.layer.{}.", i);
      for (const char* proj : {"attention.self.query", "attention.self.key", "attention.self.value",
                               "attention.output.dense"}) {
        add_linear(t, p + proj, h, h, true);
      }
      add_norm(t, p + "attention.output.LayerNorm", h, true);
      add_linear(t, p + "intermediate.dense", f, h, true);
      add_linear(t, p + "output.dense", h, f, true);
      add_norm(t, p + "output.LayerNorm", h, true);
    }
  } else if (type == "gpt2") {
    const int64_t h = cfg_int(c, "n_embd"), L = cfg_int(c, "n_layer");
    const int64_t f = cfg_int(c, "n_inner", 4 * h);
    const int64_t vocab = cfg_int(c, "vocab_size");
    t.push_back({"wte.weight", {vocab, h}});
    t.push_back({"wpe.weight", {cfg_int(c, "n_positions", 1024), h}});
    for (int64_t i = 0; i < L; ++i) {
      const std::string p = fmt::format("h.{}.", i);
      add_norm(t, p + "ln_1", h, true);
      // Conv1D stores [in, out].
      t.push_back({p + "attn.c_attn.weight", {h, 3 * h}});
      t.push_back({p + "attn.c_attn.bias", {3 * h}, Fill::kZeros});
      t.push_back({p + "attn.c_proj.weight", {h, h}});
      t.push_back({p + "attn.c_proj.bias", {h}, Fill::kZeros});
      add_norm(t, p + "ln_2", h, true);
      t.push_back({p + "mlp.c_fc.weight", {h, f}});
      t.push_back({p + "mlp.c_fc.bias", {f}, Fill::kZeros});
      t.push_back({p + "mlp.c_proj.weight", {f, h}});
      t.push_back({p + "mlp.c_proj.bias", {h}, Fill::kZeros});
    }
    add_norm(t, "ln_f", h, true);
    if (!cfg_bool(c, "tie_word_embeddings", true)) t.push_back({"lm_head.weight", {vocab, h}});
  } else if (type == "llama" || type == "mistral" || type == "qwen2") {
    const int64_t h = cfg_int(c, "hidden_size"), f = cfg_int(c, "intermediate_size"),
                  L = cfg_int(c, "num_hidden_layers");
    const int64_t heads = cfg_int(c, "num_attention_heads");
    const int64_t kv_heads = cfg_int(c, "num_key_value_heads", heads);
    const int64_t head_dim = cfg_int(c, "head_dim", h / heads);
    const int64_t vocab = cfg_int(c, "vocab_size");
    const bool qkv_bias = type == "qwen2" || cfg_bool(c, "attention_bias", false);
    const bool o_bias = type != "qwen2" && cfg_bool(c, "attention_bias", false);
    const bool mlp_bias = cfg_bool(c, "mlp_bias", false);
    t.push_back({"model.embed_tokens.weight", {vocab, h}});
    for (int64_t i = 0; i < L; ++i) {
      const std::string p = fmt::format("model.layers.{}.", i);
      add_norm(t, p + "input_layernorm", h, false);
      add_norm(t, p + "post_attention_layernorm", h, false);
      add_linear(t, p + "self_attn.q_proj", heads * head_dim, h, qkv_bias);
      add_linear(t, p + "self_attn.k_proj", kv_heads * head_dim, h, qkv_bias);
      add_linear(t, p + "self_attn.v_proj", kv_heads * head_dim, h, qkv_bias);
      add_linear(t, p + "self_attn.o_proj", h, heads * head_dim, o_bias);
      add_linear(t, p + "mlp.gate_proj", f, h, mlp_bias);
      add_linear(t, p + "mlp.up_proj", f, h, mlp_bias);
      add_linear(t, p + "mlp.down_proj", h, f, mlp_bias);
    }
    add_norm(t, "model.norm", h, false);
    if (!cfg_bool(c, "tie_word_embeddings", false)) t.push_back({"lm_head.weight", {vocab, h}});
  } else {
    throw Error(
        ErrorCode::kUnsupported,
        fmt::format(
            "random weights: model_type '{}' is not supported (bert, gpt2, llama, mistral, qwen2)",
            type));
  }
  return t;
}

void write_random_checkpoint(const nlohmann::json& config, const std::string& dir, uint64_t seed) {
  const auto layout = random_checkpoint_layout(config);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(ErrorCode::kIo, fmt::format("cannot create {}: {}", dir, ec.message()));
  {
    std::ofstream cf(dir + "/config.json");
    cf << config.dump(2) << "\n";
    if (!cf) throw Error(ErrorCode::kIo, fmt::format("cannot write {}/config.json", dir));
  }
  // safetensors: u64 header length, JSON header (padded with spaces to 8 bytes), f32 data.
  nlohmann::json header = nlohmann::json::object();
  size_t offset = 0;
  for (const auto& t : layout) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    const size_t bytes = static_cast<size_t>(n) * sizeof(float);
    header[t.name] = {
        {"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  header["__metadata__"] = {{"format", "pt"},
                            {"kernelpytorch", fmt::format("random weights, seed {}", seed)}};
  std::string hj = header.dump();
  hj.append((8 - hj.size() % 8) % 8, ' ');
  const std::string path = dir + "/model.safetensors";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw Error(ErrorCode::kIo, fmt::format("cannot write {}", path));
  const uint64_t hlen = hj.size();
  bool ok =
      std::fwrite(&hlen, 8, 1, f) == 1 && std::fwrite(hj.data(), 1, hj.size(), f) == hj.size();
  const double stdev = config.value("initializer_range", 0.02);
  const double half_width = stdev * std::sqrt(3.0);  // uniform[-a, a] has std a / sqrt(3)
  SplitMix rng{seed ^ 0x6b707462656e6368ULL};
  std::vector<float> chunk(1 << 16);
  for (const auto& t : layout) {
    int64_t left = 1;
    for (int64_t d : t.shape) left *= d;
    while (left > 0 && ok) {
      const size_t n =
          static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(chunk.size())));
      for (size_t i = 0; i < n; ++i) {
        switch (t.fill) {
          case Fill::kOnes:
            chunk[i] = 1.0f;
            break;
          case Fill::kZeros:
            chunk[i] = 0.0f;
            break;
          case Fill::kNormalish: {
            const double u = static_cast<double>(rng.next() >> 11) * 0x1.0p-53;  // [0, 1)
            chunk[i] = static_cast<float>((2 * u - 1) * half_width);
            break;
          }
        }
      }
      ok = std::fwrite(chunk.data(), sizeof(float), n, f) == n;
      left -= static_cast<int64_t>(n);
    }
  }
  ok = std::fclose(f) == 0 && ok;
  if (!ok) throw Error(ErrorCode::kIo, fmt::format("error writing {} (disk full?)", path));
}

std::string cached_random_model(const std::string& config_path, uint64_t seed) {
  std::ifstream in(config_path);
  if (!in) throw Error(ErrorCode::kNotFound, fmt::format("cannot open config {}", config_path));
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(ErrorCode::kInvalidFile,
                fmt::format("{} is not valid JSON: {}", config_path, e.what()));
  }
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::string root = (xdg != nullptr && *xdg != '\0')
                               ? std::string(xdg)
                               : std::string(home != nullptr ? home : ".") + "/.cache";
  const std::string stem = fs::path(config_path).stem().string();
  const std::string dir = fmt::format("{}/kernelpytorch/random-models/{}-{:016x}", root, stem,
                                      fnv1a(config.dump() + std::to_string(seed)));
  if (fs::exists(dir + "/model.safetensors") && fs::exists(dir + "/config.json")) return dir;
  // Write next to the final place and rename, so an interrupted run never leaves half a model.
  const std::string tmp = fmt::format("{}.tmp{}", dir, static_cast<long>(getpid()));
  write_random_checkpoint(config, tmp, seed);
  std::error_code ec;
  fs::rename(tmp, dir, ec);
  if (ec && !fs::exists(dir + "/model.safetensors")) {
    throw Error(ErrorCode::kIo, fmt::format("cannot move {} to {}: {}", tmp, dir, ec.message()));
  }
  fs::remove_all(tmp, ec);
  return dir;
}

}  // namespace kpt::bench
