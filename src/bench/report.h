// Views of the history: change points per series, a text listing with sparklines, and a
// self-contained HTML report (inline SVG, no scripts or network).
#pragma once

#include <string>
#include <vector>

#include "bench/history.h"
#include "bench/stats.h"

namespace kpt::bench {

// One metric of one workload in one environment, oldest run first.
struct Series {
  std::string workload, metric, env_key, unit;
  bool higher_is_better = false;
  std::vector<double> medians, p90s;
  std::vector<int64_t> run_ids;
  std::vector<std::string> commits, times;
  std::vector<ChangePoint> change_points;
};

// Groups history entries into series and runs change-point detection on each.
std::vector<Series> build_series(const std::vector<HistoryEntry>& entries,
                                 const ChangePointOptions& options = {});

// "▁▂▄█" (Unicode block characters), one per value, scaled between the series' min and max.
std::string sparkline(const std::vector<double>& values);

// The listing `benchmark history` prints: per workload and metric, the last runs, a sparkline
// and any change points ("+12.0% at run 7 (commit abc1234)").
std::string format_history(const std::vector<Series>& series, size_t last_n = 10);

struct ReportOptions {
  std::string title = "KernelPyTorch benchmark report";
  std::string source;  // shown in the header, e.g. the history path
};
std::string render_html_report(const std::vector<HistoryEntry>& entries,
                               const ReportOptions& options);

}  // namespace kpt::bench
