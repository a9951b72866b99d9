// kpt::Engine: the public face of loading and running a model.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/logging.h"
#ifdef KPT_WITH_CUDA
#include "backends/cuda/backend.h"
#endif
#include "core/threading.h"
#include "kpt/engine.h"
#include "kpt/tokenizer.h"
#include "optimize/levels.h"
#include "runtime/engine_access.h"
#include "runtime/generator.h"
#include "runtime/session.h"

namespace kpt {

namespace fs = std::filesystem;

Level parse_level(std::string_view name) {
  if (name == "reference") return Level::kReference;
  if (name == "conservative") return Level::kConservative;
  if (name == "balanced") return Level::kBalanced;
  if (name == "aggressive") return Level::kAggressive;
  if (name == "production") return Level::kProduction;
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("unknown optimization level '{}'; choose reference, conservative, balanced, aggressive "
                          "or production",
                          name));
}

const char* level_name(Level level) {
  switch (level) {
    case Level::kReference: return "reference";
    case Level::kConservative: return "conservative";
    case Level::kBalanced: return "balanced";
    case Level::kAggressive: return "aggressive";
    case Level::kProduction: return "production";
  }
  return "?";
}

namespace {

// "auto" takes the first GPU when this build has the CUDA backend and a GPU is present, else the
// CPU; either way the verbose log says which and why. "cuda"/"cuda:N" fail clearly without one.
std::string resolve_device(const std::string& requested) {
  const bool is_cuda = requested == "cuda" || requested.rfind("cuda:", 0) == 0;
  if (requested != "auto" && requested != "cpu" && !is_cuda) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("unknown device '{}'; choose auto, cpu, cuda or cuda:N", requested));
  }
  if (requested == "cpu") return "cpu";
#ifdef KPT_WITH_CUDA
  const int n_gpus = cuda::device_count();
  if (requested == "auto") {
    if (n_gpus > 0) {
      log_info("device auto: using cuda:0, {}", cuda::device_description(0));
      return "cuda:0";
    }
    log_info("device auto: using cpu ({})", cuda::unavailable_reason());
    return "cpu";
  }
  if (n_gpus == 0) {
    throw Error(ErrorCode::kUnsupported,
                fmt::format("device '{}' is not available: no CUDA backend can run on this machine ({}); use "
                            "--device cpu (or auto)",
                            requested, cuda::unavailable_reason()));
  }
  return requested == "cuda" ? "cuda:0" : requested;  // the ordinal is checked when compiling
#else
  if (requested == "auto") {
    log_info("device auto: using cpu (this build has no CUDA backend)");
    return "cpu";
  }
  throw Error(ErrorCode::kUnsupported,
              fmt::format("device '{}' is not available: this build has no CUDA backend (configure with "
                          "-DKPT_ENABLE_CUDA=ON); use --device cpu (or auto)",
                          requested));
#endif
}

// generation_config.json overrides config.json's special ids, as transformers' generate does.
void apply_generation_config(const std::string& dir, ModelInfo& info) {
  fs::path p = fs::path(dir) / "generation_config.json";
  if (!fs::exists(p)) return;
  std::ifstream in(p);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kInvalidFile, fmt::format("{}: not valid JSON ({})", p.string(), e.what()));
  }
  if (!j.is_object()) throw Error(ErrorCode::kInvalidFile, fmt::format("{}: must be a JSON object", p.string()));
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    const auto& e = j["eos_token_id"];
    std::vector<int64_t> ids;
    if (e.is_number_integer()) {
      ids.push_back(e.get<int64_t>());
    } else if (e.is_array()) {
      for (const auto& x : e) {
        if (!x.is_number_integer()) throw Error(ErrorCode::kInvalidFile, fmt::format("{}: eos_token_id must hold integers", p.string()));
        ids.push_back(x.get<int64_t>());
      }
    } else {
      throw Error(ErrorCode::kInvalidFile, fmt::format("{}: eos_token_id must be an integer or a list", p.string()));
    }
    info.eos_token_ids = ids;
  }
  if (j.contains("pad_token_id") && j["pad_token_id"].is_number_integer()) info.pad_token_id = j["pad_token_id"].get<int64_t>();
  if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()) info.bos_token_id = j["bos_token_id"].get<int64_t>();
}

// production: each candidate level is built, timed on sample inputs (median of 3) and compared
// with reference; the fastest within the accuracy budget wins (optimize::choose_production).
Level choose_production_level(const io::HfConfig& config, const io::WeightStore& store, const std::string& device,
                              int64_t vocab, std::vector<std::string>& report) {
  ForwardInputs sample;
  uint64_t state = 42;
  for (int r = 0; r < 2; ++r) {
    std::vector<int64_t> row;
    for (int t = 0; t < 32; ++t) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      row.push_back(static_cast<int64_t>((state >> 33) % static_cast<uint64_t>(vocab)));
    }
    sample.input_ids.push_back(row);
  }
  auto session_at = [&](Level l) {
    models::BuiltModel m = models::build_model(config, store);
    if (l != Level::kReference) optimize::apply_level(m.graph, l, device);
    return std::make_unique<runtime::Session>(std::move(m), CompileOptions{device, l});
  };
  auto ref_session = session_at(Level::kReference);
  const Tensor ref = ref_session->forward(sample);
  const bool causal = ref_session->info().causal_lm;
  auto measure = [&](Level l) {
    auto s = session_at(l);
    optimize::CandidateResult r;
    r.level = l;
    Tensor out = s->forward(sample);  // warm-up, also the accuracy sample
    std::vector<double> ms;
    for (int i = 0; i < 3; ++i) {
      auto t = std::chrono::steady_clock::now();
      s->forward(sample);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
    }
    std::sort(ms.begin(), ms.end());
    r.ms = ms[1];
    r.agreement = optimize::compare_outputs(ref.data<float>(), out.data<float>(), ref.numel() / ref.dim(-1), ref.dim(-1), causal);
    return r;
  };
  return optimize::choose_production(measure, optimize::Budget{}, report);
}

}  // namespace

struct Engine::Impl {
  std::string model_dir;
  std::string device;
  EngineOptions options;
  std::unique_ptr<runtime::Session> session;
  std::unique_ptr<Tokenizer> tokenizer;
  double load_ms = 0;
  std::vector<std::string> pass_report;  // what the level's passes changed
  Level effective_level = Level::kReference;  // production resolves to a measured candidate
};

Engine::Engine() : impl_(std::make_unique<Impl>()) {}
Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::load(const std::string& model_dir, const EngineOptions& options) {
  auto t0 = std::chrono::steady_clock::now();
  if (options.verbose) set_log_level(LogLevel::kInfo);
  std::unique_ptr<Engine> e(new Engine());
  e->impl_->model_dir = model_dir;
  e->impl_->options = options;
  e->impl_->device = resolve_device(options.device);
  if (options.num_threads > 0) set_num_threads(options.num_threads);

  io::HfConfig config = io::HfConfig::load(model_dir);
  log_info("loading {} ({}) from {}", config.model_type(), fmt::join(config.architectures(), ", "), model_dir);
  io::WeightStore store = io::WeightStore::open_dir(model_dir);
  models::BuiltModel model = models::build_model(config, store);
  apply_generation_config(model_dir, model.info);
  // Levels are pass lists run on the graph for the device; production measures the candidates.
  Level level = options.level;
  if (level == Level::kProduction) {
    level = choose_production_level(config, store, e->impl_->device, model.info.vocab_size, e->impl_->pass_report);
  }
  if (level != Level::kReference) {
    for (auto& line : optimize::apply_level(model.graph, level, e->impl_->device)) e->impl_->pass_report.push_back(line);
  }
  for (const auto& line : e->impl_->pass_report) log_info("pass: {}", line);
  e->impl_->effective_level = level;
  CompileOptions co;
  co.device = e->impl_->device;
  co.level = level;
  e->impl_->session = std::make_unique<runtime::Session>(std::move(model), co);

  fs::path tok = fs::path(model_dir) / "tokenizer.json";
  if (fs::exists(tok)) {
    e->impl_->tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_file(tok.string()));
    // Like transformers' tokenizers: padding and truncation saved in tokenizer.json apply only
    // when asked for. A prompt padded to 128 [PAD] tokens would otherwise be run as real text.
    e->impl_->tokenizer->set_padding(std::nullopt);
    e->impl_->tokenizer->set_truncation(std::nullopt);
  }
  e->impl_->load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  log_info("loaded in {:.0f} ms: {} nodes, {:.1f} MB of weights, level {}, device {}", e->impl_->load_ms,
           e->impl_->session->graph().nodes().size(), e->impl_->session->graph().weight_bytes() / 1e6,
           level_name(options.level), e->impl_->device);
  return e;
}

const ModelInfo& Engine::info() const { return impl_->session->info(); }
std::vector<std::string> Engine::pass_report() const { return impl_->pass_report; }
Level Engine::effective_level() const { return impl_->effective_level; }
const std::string& Engine::device() const { return impl_->device; }
const Tokenizer* Engine::tokenizer() const { return impl_->tokenizer.get(); }
std::string Engine::graph_dump() const { return impl_->session->graph().dump(); }

std::string Engine::describe() const {
  const ModelInfo& i = info();
  std::string s;
  s += fmt::format("model        {} ({}, family {})\n", impl_->model_dir, i.architecture, i.family);
  s += fmt::format("parameters   {:.2f} M ({} in the checkpoint)\n", i.n_parameters / 1e6, i.weights_dtype);
  s += fmt::format("shape        {} layers, hidden {}, {} heads ({} KV), head_dim {}, vocab {}\n", i.n_layers,
                   i.hidden_size, i.n_heads, i.n_kv_heads, i.head_dim, i.vocab_size);
  s += fmt::format("output       {}\n", i.causal_lm ? "logits [batch, seq, vocab]" : "last_hidden_state [batch, seq, hidden]");
  s += fmt::format("level        {} on {} ({} threads)\n", level_name(impl_->options.level), impl_->device, num_threads());
  s += fmt::format("tokenizer    {}\n", impl_->tokenizer ? "tokenizer.json" : "none (ids only)");
  s += fmt::format("graph        {} nodes\n", impl_->session->graph().nodes().size());
  if (impl_->effective_level != impl_->options.level) {
    s += fmt::format("chosen level {}\n", level_name(impl_->effective_level));
  }
  for (const auto& line : impl_->pass_report) s += fmt::format("pass         {}\n", line);
  return s;
}

Tensor Engine::forward(const ForwardInputs& inputs) { return impl_->session->forward(inputs); }

GenerateResult Engine::generate(const std::vector<std::vector<int64_t>>& prompts, const GenerateOptions& options) {
  return runtime::generate(*impl_->session, prompts, options, info().eos_token_ids);
}

namespace runtime {
Session& engine_session(Engine& engine) { return *engine.impl_->session; }
}  // namespace runtime

}  // namespace kpt
