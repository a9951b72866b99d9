#include "bench/runner.h"

#include <time.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <fmt/format.h>

#include "bench/peer.h"
#include "bench/random_model.h"
#include "core/threading.h"
#include "kpt/engine.h"
#include "kpt/status.h"

#ifndef KPT_SOURCE_DIR
#define KPT_SOURCE_DIR "."
#endif

namespace kpt::bench {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// [rows, cols] token ids in [first, vocab), fixed seed: every run feeds the same inputs.
std::vector<std::vector<int64_t>> random_ids(int64_t rows, int64_t cols, int64_t vocab,
                                             uint64_t seed) {
  std::mt19937_64 rng(seed);
  // Skip the lowest ids, where special tokens ([PAD], <s>, ...) usually live.
  const int64_t first = std::min<int64_t>(vocab - 1, 5);
  std::uniform_int_distribution<int64_t> dist(first, vocab - 1);
  std::vector<std::vector<int64_t>> ids(static_cast<size_t>(rows),
                                        std::vector<int64_t>(static_cast<size_t>(cols)));
  for (auto& row : ids) {
    for (auto& v : row) v = dist(rng);
  }
  return ids;
}

double process_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// How much of its threads' time this process got during one timed repetition: CPU seconds over
// wall seconds x threads. Near 1 on an idle machine (the OpenMP pool spins while it waits); far
// below 1 when other processes took the cores, which makes that run's times unreliable.
struct CpuShare {
  double cpu0 = process_cpu_s();
  Clock::time_point t0 = Clock::now();
  double finish() const {
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    return wall > 0 ? (process_cpu_s() - cpu0) / (wall * std::max(1, num_threads())) : 1.0;
  }
};

Metric metric(const char* unit, bool higher_is_better) {
  Metric m;
  m.unit = unit;
  m.higher_is_better = higher_is_better;
  return m;
}

}  // namespace

double load_average_1m() {
  std::ifstream f("/proc/loadavg");
  double v = 0;
  f >> v;
  return v;
}

int64_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream ss(line.substr(6));
      int64_t kb = 0;
      ss >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

void reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";  // resets VmHWM to the current RSS (Linux >= 4.0)
}

struct WorkloadRunner::Impl {
  WorkloadResult r;
  Progress progress;
  std::string label;
  int total = 0;
  std::unique_ptr<Engine> engine;
  ForwardInputs forward_inputs;               // [batch, seq] ids (forward)
  std::vector<std::vector<int64_t>> prompts;  // [batch, prompt_len] ids (generate)
  Metric latency = metric("ms", false), seq_s = metric("seq/s", true),
         tok_s = metric("tokens/s", true);
  Metric ttft = metric("ms", false), itl = metric("ms", false),
         cpu_share = metric("fraction", true);

  void forward_once(bool timed) {
    const WorkloadSpec& spec = r.spec;
    const CpuShare share;
    const auto t0 = Clock::now();
    Tensor out = engine->forward(forward_inputs);
    const double ms = ms_between(t0, Clock::now());
    if (!timed) return;
    cpu_share.samples.push_back(share.finish());
    latency.samples.push_back(ms);
    seq_s.samples.push_back(static_cast<double>(spec.batch) / (ms / 1e3));
    tok_s.samples.push_back(static_cast<double>(spec.batch * spec.seq) / (ms / 1e3));
  }

  void generate_once(bool timed) {
    const WorkloadSpec& spec = r.spec;
    GenerateOptions g;
    g.max_new_tokens = spec.new_tokens;
    g.eos_token_ids = std::vector<int64_t>{};  // fixed length: never stop early
    std::vector<Clock::time_point> stamps;
    stamps.reserve(static_cast<size_t>(spec.new_tokens));
    g.on_token = [&](size_t row, int64_t) {
      if (row == 0) stamps.push_back(Clock::now());
      return true;
    };
    const CpuShare share;
    const auto t0 = Clock::now();
    engine->generate(prompts, g);
    const auto t1 = Clock::now();
    if (!timed || stamps.empty()) return;
    cpu_share.samples.push_back(share.finish());
    latency.samples.push_back(ms_between(t0, t1));
    ttft.samples.push_back(ms_between(t0, stamps.front()));
    for (size_t k = 1; k < stamps.size(); ++k)
      itl.samples.push_back(ms_between(stamps[k - 1], stamps[k]));
    // Tokens after the first come from decode steps; count them over the decode time.
    const double decode_s = ms_between(stamps.front(), stamps.back()) / 1e3;
    if (stamps.size() > 1 && decode_s > 0) {
      tok_s.samples.push_back(static_cast<double>(spec.batch) *
                              static_cast<double>(stamps.size() - 1) / decode_s);
    }
  }
};

std::vector<std::vector<int64_t>> workload_ids(int64_t rows, int64_t cols, int64_t vocab) {
  return random_ids(rows, cols, vocab, 1234);
}

void check_spec(const WorkloadSpec& spec) {
  if (spec.repeat < 1)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--repeat must be >= 1, got {}", spec.repeat));
  if (spec.warmup < 0)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--warmup must be >= 0, got {}", spec.warmup));
  if (spec.batch < 1)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--batch must be >= 1, got {}", spec.batch));
  if (spec.kind != "forward" && spec.kind != "generate") {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("workload kind must be forward or generate, got '{}'", spec.kind));
  }
  if (spec.kind == "forward" && spec.seq < 1)
    throw Error(ErrorCode::kInvalidArgument, fmt::format("--seq must be >= 1, got {}", spec.seq));
  if (spec.kind == "generate" && (spec.prompt_len < 1 || spec.new_tokens < 1))
    throw Error(ErrorCode::kInvalidArgument, "--prompt-len and --new-tokens must be >= 1");
}

WorkloadRunner::WorkloadRunner(const WorkloadSpec& spec, const Progress& progress)
    : impl_(std::make_unique<Impl>()) {
  check_spec(spec);
  Impl& m = *impl_;
  WorkloadResult& r = m.r;
  r.spec = spec;
  m.progress = progress;
  m.total = spec.warmup + spec.repeat + 1;  // +1: loading
  m.label = spec.id();
  if (progress) progress(0, m.total, m.label + " (loading)");
  if (r.spec.model_dir.empty()) {
    if (r.spec.random_config.empty())
      throw Error(ErrorCode::kInvalidArgument, "a workload needs a model directory");
    if (progress) progress(0, m.total, m.label + " (making random weights, once)");
    r.spec.model_dir = cached_random_model(r.spec.random_config);
  }
  EngineOptions eo;
  eo.level = parse_level(spec.level);
  eo.device = spec.device;
  eo.num_threads = spec.threads;
  const auto t_load = Clock::now();
  m.engine = Engine::load(r.spec.model_dir, eo);
  Metric load = metric("ms", false);
  load.samples.push_back(ms_between(t_load, Clock::now()));
  r.metrics["load_ms"] = load;
  r.device_used = m.engine->device();
  const ModelInfo& info = m.engine->info();
  r.n_parameters = info.n_parameters;
  if (spec.kind == "forward") {  // lengths >= 1 were checked by check_spec
    if (info.max_positions > 0 && spec.seq > info.max_positions) {
      throw Error(ErrorCode::kOutOfRange, fmt::format("--seq {} exceeds the model's {} positions",
                                                      spec.seq, info.max_positions));
    }
    m.forward_inputs.input_ids = workload_ids(spec.batch, spec.seq, info.vocab_size);
  } else {
    if (!info.causal_lm) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("{} is an encoder ({}): benchmark it with --kind forward",
                              r.spec.model_dir, info.family));
    }
    m.prompts = workload_ids(spec.batch, spec.prompt_len, info.vocab_size);
  }
  if (progress) progress(1, m.total, m.label);
  r.load_average[0] = load_average_1m();
}

WorkloadRunner::~WorkloadRunner() = default;

int WorkloadRunner::repetitions() const {
  return impl_->r.spec.warmup + impl_->r.spec.repeat;
}

void WorkloadRunner::run_repetition(int i) {
  Impl& m = *impl_;
  const bool timed = i >= m.r.spec.warmup;
  if (m.r.spec.kind == "forward") {
    m.forward_once(timed);
  } else {
    m.generate_once(timed);
  }
  if (m.progress) m.progress(i + 2, m.total, m.label);
}

WorkloadResult WorkloadRunner::finish() {
  Impl& m = *impl_;
  WorkloadResult& r = m.r;
  r.load_average[1] = load_average_1m();
  r.metrics["latency_ms"] = m.latency;
  r.metrics["tokens_s"] = m.tok_s;
  if (r.spec.kind == "forward") {
    r.metrics["throughput_seq_s"] = m.seq_s;
  } else {
    r.metrics["ttft_ms"] = m.ttft;
    if (!m.itl.samples.empty()) r.metrics["itl_ms"] = m.itl;
  }
  for (const char* k : {"latency_ms", "tokens_s"}) {
    if (r.metrics[k].samples.empty()) r.metrics.erase(k);
  }
  // Only meaningful where the CPU does the work; a GPU run's CPU mostly waits.
  if (r.device_used.rfind("cpu", 0) == 0 && !m.cpu_share.samples.empty())
    r.metrics["cpu_share"] = m.cpu_share;
  Metric rss = metric("bytes", false);
  rss.samples.push_back(static_cast<double>(peak_rss_bytes()));
  r.metrics["peak_rss_bytes"] = rss;
  return r;
}

WorkloadResult run_workload(const WorkloadSpec& spec, const Progress& progress) {
  reset_peak_rss();
  WorkloadRunner runner(spec, progress);
  for (int i = 0; i < runner.repetitions(); ++i) runner.run_repetition(i);
  return runner.finish();
}

std::vector<WorkloadResult> run_interleaved(const std::vector<WorkloadSpec>& specs,
                                            const std::function<Progress(size_t)>& progress_for,
                                            std::vector<std::string>* skipped) {
  reset_peak_rss();
  std::vector<std::unique_ptr<RepetitionRunner>> runners;
  int reps = 0;
  for (size_t k = 0; k < specs.size(); ++k) {
    const Progress progress = progress_for ? progress_for(k) : Progress{};
    if (specs[k].peer.empty()) {
      runners.push_back(std::make_unique<WorkloadRunner>(specs[k], progress));
    } else {
      try {
        runners.push_back(std::make_unique<PeerRunner>(specs[k], progress));
      } catch (const PeerUnavailable& e) {
        if (skipped) skipped->push_back(specs[k].id() + ": " + e.what());
        if (progress) progress(1, 1, specs[k].id() + " (skipped)");
        continue;
      }
    }
    reps = std::max(reps, runners.back()->repetitions());
  }
  // Round-robin: a change of machine load hits every variant alike.
  for (int i = 0; i < reps; ++i) {
    for (auto& r : runners) {
      if (i < r->repetitions()) r->run_repetition(i);
    }
  }
  std::vector<WorkloadResult> out;
  for (auto& r : runners) out.push_back(r->finish());
  return out;
}

std::string find_suite(const std::string& name) {
  std::vector<std::string> tried;
  for (const std::string& p : {name, "benchmarks/" + name + ".json",
                               std::string(KPT_SOURCE_DIR) + "/benchmarks/" + name + ".json"}) {
    tried.push_back(p);
    if (fs::is_regular_file(p)) return p;
  }
  std::string list;
  for (const auto& t : tried) list += "\n  " + t;
  throw Error(ErrorCode::kNotFound,
              fmt::format("benchmark suite '{}' not found; looked at:{}", name, list));
}

std::vector<WorkloadSpec> load_suite(const std::string& path, const SuiteOptions& o) {
  std::ifstream f(path);
  if (!f) throw Error(ErrorCode::kNotFound, fmt::format("cannot open suite {}", path));
  nlohmann::json j;
  try {
    std::stringstream ss;
    ss << f.rdbuf();
    j = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(ErrorCode::kInvalidFile, fmt::format("{} is not valid JSON: {}", path, e.what()));
  }
  const fs::path base = fs::path(path).parent_path();
  const char* list = o.quick ? "quick" : "workloads";
  if (!j.contains("models") || !j[list].is_array()) {
    throw Error(ErrorCode::kInvalidFile,
                fmt::format("{}: a suite needs \"models\" and a \"{}\" array", path, list));
  }
  const auto defaults = j.value("defaults", nlohmann::json::object());
  std::vector<WorkloadSpec> out;
  for (const auto& w : j[list]) {
    WorkloadSpec s;
    s.name = w.at("model").get<std::string>();
    if (!j["models"].contains(s.name)) {
      throw Error(
          ErrorCode::kInvalidFile,
          fmt::format("{}: workload names model '{}' which \"models\" lacks", path, s.name));
    }
    const auto& m = j["models"][s.name];
    // Real weights when a prepared copy exists, random ones from the official config otherwise.
    s.weights = "random";
    for (const auto& real : m.value("real_weights", nlohmann::json::array())) {
      const fs::path dir = fs::path(o.models_dir) / real.get<std::string>();
      if (fs::is_regular_file(dir / "config.json")) {
        s.model_dir = dir.string();
        s.weights = "real";
        break;
      }
    }
    if (s.weights == "random") {
      if (!m.contains("config")) {
        if (w.value("optional", false)) continue;  // an extra that needs prepared weights
        throw Error(ErrorCode::kNotFound,
                    fmt::format("{}: model '{}' has no config and no prepared weights in {}", path,
                                s.name, o.models_dir));
      }
      s.random_config = (base / m.at("config").get<std::string>()).string();
    }
    s.kind = w.value("kind", "forward");
    s.batch = w.value("batch", int64_t{1});
    s.seq = w.value("seq", int64_t{128});
    s.prompt_len = w.value("prompt_len", int64_t{32});
    s.new_tokens = w.value("new_tokens", int64_t{32});
    s.warmup = o.warmup >= 0 ? o.warmup : w.value("warmup", defaults.value("warmup", 1));
    s.repeat = o.repeat > 0 ? o.repeat : w.value("repeat", defaults.value("repeat", 10));
    s.level = o.level;
    s.device = o.device;
    s.threads = o.threads;
    out.push_back(s);
  }
  return out;
}

}  // namespace kpt::bench
