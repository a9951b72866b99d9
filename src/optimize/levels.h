// Optimization levels as sets of graph passes (cumulative; see docs/levels.md), and what this
// CPU can do (the passes adapt to it: bf16 only where the hardware has it).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "graph/ir.h"
#include "kpt/engine.h"
#include "optimize/accuracy.h"

namespace kpt::optimize {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
  bool avx512_bf16 = false;
  bool amx_bf16 = false;
  bool avx512_vnni = false;
  bool avx_vnni = false;
  std::string summary() const;  // "avx2 fma" ...
};
const CpuFeatures& cpu_features();

// Runs the passes of `level` for `device` on the graph and returns the report, one line per
// change ("packed QKV 12/12 layers"). reference returns no lines and leaves the graph as is.
// production is chosen by measurement (choose_production), not by a fixed pass list.
std::vector<std::string> apply_level(graph::Graph& graph, Level level, const std::string& device);

// One candidate of `production`, measured by the caller on sample inputs.
struct CandidateResult {
  Level level = Level::kConservative;
  double ms = 0;  // median time of the sample forward
  Agreement agreement;
  bool passes = false;
};

// Measures conservative, balanced and aggressive through `measure` and returns the fastest that
// passes `budget` (conservative is exact and always a fallback), with a report line per candidate.
Level choose_production(const std::function<CandidateResult(Level)>& measure, const Budget& budget,
                        std::vector<std::string>& report);

}  // namespace kpt::optimize
