// The public C++ API: load a Hugging Face model directory, run forward passes, generate.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kpt/status.h"
#include "kpt/tensor.h"

namespace kpt {

class Tokenizer;
class Engine;
namespace runtime {
class Session;
Session& engine_session(Engine& engine);
}  // namespace runtime

// Optimization levels (cumulative; see docs/levels.md). `reference` is fp32, one kernel per
// primitive op, and is the oracle every other level is checked against.
enum class Level { kReference, kConservative, kBalanced, kAggressive, kProduction };
Level parse_level(std::string_view name);  // throws kInvalidArgument naming the choices
const char* level_name(Level level);

struct EngineOptions {
  Level level = Level::kReference;
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  int num_threads = 0;          // 0: OMP_NUM_THREADS or all cores
  bool verbose = false;         // progress and load report on stderr
};

// What the loaded model is: taken from config.json and the weight schema.
struct ModelInfo {
  std::string family;        // bert, gpt2, llama (llama/mistral/qwen2)
  std::string model_type;    // config.model_type
  std::string architecture;  // config.architectures[0] or the family default
  bool causal_lm = false;    // logits [B, S, V]; otherwise last_hidden_state [B, S, H]
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_positions = 0;  // 0 when unbounded (RoPE)
  int64_t type_vocab_size = 0;  // BERT token types; 0 when the model has none
  std::vector<int64_t> eos_token_ids;
  std::optional<int64_t> bos_token_id;
  std::optional<int64_t> pad_token_id;
  int64_t n_parameters = 0;
  std::string weights_dtype;  // dtype found in the checkpoint: f32, f16, bf16
};

// A batch of token sequences, all rows of equal length. attention_mask defaults to all ones;
// token_type_ids to zeros. Padding may be on the right or on the left: positions count only
// unmasked tokens, so a padded row gives the same outputs as the row alone.
struct ForwardInputs {
  std::vector<std::vector<int64_t>> input_ids;
  std::vector<std::vector<int64_t>> attention_mask;
  std::vector<std::vector<int64_t>> token_type_ids;
};

struct GenerateOptions {
  int64_t max_new_tokens = 32;
  bool do_sample = false;  // false: greedy
  double temperature = 1.0;
  int64_t top_k = 0;       // 0: off
  double top_p = 1.0;      // 1: off
  double repetition_penalty = 1.0;  // 1: off (HF semantics: divide positive logits, multiply negative)
  uint64_t seed = 0;
  // Stop tokens; nullopt: the model's eos_token_id from config.json / generation_config.json.
  std::optional<std::vector<int64_t>> eos_token_ids;
  // Called for every new token of every row; return false to stop that row.
  std::function<bool(size_t row, int64_t token)> on_token;
};

struct GenerateResult {
  std::vector<std::vector<int64_t>> new_ids;  // per row, new tokens only (eos included when hit)
  std::vector<std::string> finish_reasons;    // "eos", "length" or "stopped"
  double prefill_ms = 0;
  double decode_ms = 0;
  int64_t decode_steps = 0;
};

// An optimized model directory (written by `kernelpytorch optimize`) carries kpt_plan.json:
// the level chosen, the device and hardware it was measured on. nullopt when absent; throws
// kInvalidFile when present but malformed.
struct OptimizationPlan {
  Level level = Level::kReference;  // the resolved level (never production)
  std::string device;               // "cpu", "cuda:0"
  std::string hardware;             // fingerprint, e.g. "cpu: AMD EPYC ... [avx2 fma]"
};
std::optional<OptimizationPlan> read_plan(const std::string& model_dir);
// Options to run an optimized directory here: the plan's level, and its device when this
// machine has it. `note` says what was adapted (e.g. planned for cuda:0, no GPU here).
EngineOptions options_for_plan(const OptimizationPlan& plan, EngineOptions base, std::string& note);

class Engine {
 public:
  // Loads MODEL_DIR (config.json + safetensors [+ tokenizer.json]). Throws kpt::Error.
  static std::unique_ptr<Engine> load(const std::string& model_dir, const EngineOptions& options = {});
  ~Engine();

  const ModelInfo& info() const;
  const std::string& device() const;  // the device actually used, e.g. "cpu"
  std::string describe() const;        // a readable multi-line summary
  std::string graph_dump() const;
  // What the optimization level's graph passes changed, one line each ("packed QKV 12/12
  // layers"); for production also each measured candidate. Empty at the reference level.
  std::vector<std::string> pass_report() const;
  // The level actually running: production resolves to the measured candidate it chose.
  Level effective_level() const;

  // f32 logits [B, S, V] for causal LMs, last_hidden_state [B, S, H] for encoders.
  Tensor forward(const ForwardInputs& inputs);

  // Greedy or sampled continuation of each prompt (prompts may differ in length: they are
  // left-padded internally). Only for causal LMs.
  GenerateResult generate(const std::vector<std::vector<int64_t>>& prompts, const GenerateOptions& options);

  // The model's tokenizer.json, or nullptr when the directory has none.
  const Tokenizer* tokenizer() const;

 private:
  friend runtime::Session& runtime::engine_session(Engine& engine);
  Engine();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kpt
