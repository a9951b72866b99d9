// Benchmark results: what was run, the raw samples of every metric, and the environment.
// JSON schema "kernelpytorch.benchmark/1" (docs/benchmarking.md describes every field).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kpt::bench {

// One measured quantity. The summary is derived from the raw samples, which are always kept
// so that `compare` can test significance later.
struct Metric {
  std::string unit;  // ms, seq/s, tokens/s, bytes
  bool higher_is_better = false;
  std::vector<double> samples;
  double median() const;
  double p90() const;
  double mean() const;
};

// What to run. `kind` is "forward" (one forward pass over [batch, seq]) or "generate"
// (prefill of [batch, prompt_len] then new_tokens greedy decode steps).
struct WorkloadSpec {
  std::string name;              // model short name, e.g. "gpt2"
  std::string model_dir;         // where the weights were loaded from
  std::string weights = "real";  // "real" or "random" (generated from the config, fixed seed)
  std::string random_config;     // config.json to make random weights from, when model_dir is empty
  std::string kind = "forward";
  std::string level = "reference";
  std::string device = "cpu";
  int64_t batch = 1;
  int64_t seq = 128;        // forward
  int64_t prompt_len = 32;  // generate
  int64_t new_tokens = 32;  // generate
  int warmup = 1;
  int repeat = 10;
  int threads = 0;
  // Empty: this engine at `level`. Otherwise a peer (bench/peer.h: pytorch, torch-compile,
  // onnxruntime, llamacpp) and `level` holds the peer's name, so ids stay name/kind/shape/x/device.
  std::string peer;
  // "gpt2/generate/b1-p32-n128/reference/cpu": history and compare match workloads by this.
  std::string id() const;
};

struct WorkloadResult {
  WorkloadSpec spec;
  std::string device_used;  // what the engine actually ran on
  int64_t n_parameters = 0;
  double load_average[2] = {0, 0};  // 1-minute load average before and after the workload
  // latency_ms, throughput_seq_s, tokens_s, ttft_ms, itl_ms, peak_rss_bytes, load_ms, cpu_share
  std::map<std::string, Metric> metrics;
  // Peers: what ran (engine version, precision, how it was timed), as the peer reported it.
  nlohmann::json peer_info;
};

struct BenchResult {
  std::string created_at;      // UTC, ISO 8601
  nlohmann::json environment;  // environment_json()
  std::vector<WorkloadResult> workloads;
  std::vector<std::string> skipped;  // "workload id: why" for peers that could not run
};

nlohmann::json to_json(const BenchResult& r);
nlohmann::json to_json(const WorkloadResult& w);
// Throws kpt::Error(kInvalidFile) naming `source` and the JSON path of the bad field.
BenchResult result_from_json(const nlohmann::json& j, const std::string& source);
WorkloadResult workload_from_json(const nlohmann::json& j, const std::string& source);
BenchResult load_result(const std::string& path);
void save_result(const BenchResult& r, const std::string& path);

std::string utc_now_iso8601();

}  // namespace kpt::bench
