// Regression detection between two results: a metric regressed only when its median moved the
// wrong way by more than the threshold AND the raw samples differ significantly (two-sided
// Mann-Whitney U, p < alpha). Noise alone therefore raises no alarm, and a large but unproven
// move is reported as "unsure" instead.
#pragma once

#include <string>
#include <vector>

#include "bench/result.h"

namespace kpt::bench {

struct CompareOptions {
  double threshold = 0.05;  // relative change of the median, e.g. 0.05 for 5%
  double alpha = 0.01;      // significance level
  // A CPU workload whose process got less than this share of its threads' time (median of
  // cpu_share, either side) ran on a busy machine: its moves are reported "unsure", never
  // "regressed" or "improved". 0 turns the check off.
  double min_cpu_share = 0.8;
};

enum class Verdict { kUnchanged, kImproved, kRegressed, kUnsure };
const char* verdict_name(Verdict v);

struct MetricChange {
  std::string workload;
  std::string metric;
  std::string unit;
  bool higher_is_better = false;
  double base_median = 0, new_median = 0;
  double relative = 0;  // (new - base) / base
  double p_value = 1;   // NaN when a side has a single sample (no test possible)
  size_t n_base = 0, n_new = 0;
  Verdict verdict = Verdict::kUnchanged;
  std::string note;  // why unsure, or which test decided
};

struct Comparison {
  std::vector<MetricChange> changes;
  std::vector<std::string> only_in_base, only_in_new;  // workload ids
  bool environments_differ = false;
  bool has_regression() const;
};

// Metrics whose samples cannot carry a significance test (single values such as peak memory)
// are judged on the threshold alone; metrics named in `ignore` (e.g. load_ms) are skipped.
Comparison compare_results(const BenchResult& base, const BenchResult& candidate,
                           const CompareOptions& options = {});
MetricChange compare_metric(const std::string& workload, const std::string& name,
                            const Metric& base, const Metric& candidate,
                            const CompareOptions& options);

// A readable table of the changes (all of them, or only those that moved with `only_moved`).
std::string format_comparison(const Comparison& c, const CompareOptions& options, bool only_moved);

// A floor on a same-run ratio: `fast` (e.g. the conservative level) must be at least min_ratio
// times faster than `base` (e.g. reference, measured interleaved in the same process) on
// latency_ms. Below the floor it fails only when base's samples are significantly smaller than
// min_ratio x fast's samples (two-sided Mann-Whitney U, p < alpha); otherwise it is "unsure".
struct RatioCheck {
  std::string workload, base_variant;
  double min_ratio = 1, ratio = 0;        // ratio: median(base) / median(fast)
  double p_value = 1;                     // NaN without a test (a side has < 2 samples)
  Verdict verdict = Verdict::kUnchanged;  // kUnchanged: meets the floor; kRegressed; kUnsure
  std::string note;
};
RatioCheck check_min_ratio(const WorkloadResult& base, const WorkloadResult& fast, double min_ratio,
                           double alpha = 0.01);
std::string format_ratio_check(const RatioCheck& r);

// Parses "3", "3x" or "3.5X" (a ratio > 0). Throws kInvalidArgument.
double parse_ratio(const std::string& text);

// Parses "5%", "5" (percent) or "0.05" (fraction, when < 1 and no '%'). Throws kInvalidArgument.
double parse_threshold(const std::string& text);

}  // namespace kpt::bench
