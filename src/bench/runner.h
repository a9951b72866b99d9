// Runs benchmark workloads through the public engine API and collects raw samples.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench/result.h"

namespace kpt::bench {

// Called as work advances: done/total steps of the current workload and a short label.
using Progress = std::function<void(int done, int total, const std::string& label)>;

// Loads spec.model_dir and measures:
//   forward:  latency_ms, throughput_seq_s, tokens_s (batch * seq / latency)
//   generate: latency_ms (whole generate call), ttft_ms (call start -> first token),
//             itl_ms (gap between consecutive tokens of row 0, every step of every repeat),
//             tokens_s (batch * decoded tokens / decode time)
//   both:     peak_rss_bytes (VmHWM, reset before loading, so weights count), load_ms,
//             cpu_share (CPU run: CPU time / (wall time x threads) per repetition; low values
//             mean other processes took the cores and the times are unreliable)
// Inputs are random token ids from a fixed seed; generation ignores EOS so every repeat does
// the same amount of work.
WorkloadResult run_workload(const WorkloadSpec& spec, const Progress& progress = {});

// One loaded workload, run a repetition at a time (so several can be interleaved): this engine
// (WorkloadRunner) or a peer in a child process (PeerRunner, bench/peer.h).
class RepetitionRunner {
 public:
  virtual ~RepetitionRunner() = default;
  virtual int repetitions() const = 0;     // warmup + repeat
  virtual void run_repetition(int i) = 0;  // i < warmup: untimed
  virtual WorkloadResult finish() = 0;
};

class WorkloadRunner : public RepetitionRunner {
 public:
  WorkloadRunner(const WorkloadSpec& spec, const Progress& progress);  // loads the model
  ~WorkloadRunner() override;
  WorkloadRunner(const WorkloadRunner&) = delete;
  WorkloadRunner& operator=(const WorkloadRunner&) = delete;
  int repetitions() const override;
  void run_repetition(int i) override;
  WorkloadResult finish() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Loads every spec, then runs repetition 0 of each, repetition 1 of each, ...: same-run
// comparisons (levels, devices, peers) where a change of machine load hits all of them alike.
// All models are in memory together, so peak_rss_bytes covers all of them (a peer's is its own
// process's). A peer that cannot run is left out and reported in `skipped` ("id: reason").
std::vector<WorkloadResult> run_interleaved(
    const std::vector<WorkloadSpec>& specs,
    const std::function<Progress(size_t)>& progress_for = {},
    std::vector<std::string>* skipped = nullptr);

// The token ids every engine (and peer) of a workload is fed: [rows, cols] in [5, vocab), fixed
// seed.
std::vector<std::vector<int64_t>> workload_ids(int64_t rows, int64_t cols, int64_t vocab);
// Shape checks shared by this engine's runner and the peers'; throws kInvalidArgument.
void check_spec(const WorkloadSpec& spec);

// Peak resident set size of this process so far (bytes), and a reset of it (Linux
// /proc/self/clear_refs; a no-op where unsupported).
int64_t peak_rss_bytes();
void reset_peak_rss();
// The 1-minute load average (/proc/loadavg; 0 where unavailable).
double load_average_1m();

// A suite file (benchmarks/<name>.json): workloads over the configs in benchmarks/configs/.
struct SuiteOptions {
  bool quick = false;  // the small variant every suite entry defines (2-core CPU friendly)
  std::string models_dir = "models";  // real weights are taken from here when present
  std::string level = "reference";
  std::string device = "cpu";
  int repeat = 0;   // 0: the suite's value
  int warmup = -1;  // -1: the suite's value
  int threads = 0;
};
// Finds benchmarks/NAME.json: as given if it is a path, else in ./benchmarks, else next to the
// sources this binary was built from. Throws kNotFound listing where it looked.
std::string find_suite(const std::string& name);
std::vector<WorkloadSpec> load_suite(const std::string& path, const SuiteOptions& options);

}  // namespace kpt::bench
