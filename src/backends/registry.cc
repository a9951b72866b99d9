// The one place that maps a device name to a backend.
#include <fmt/format.h>

#include "backends/cpu/backend.h"
#include "backends/cpu/fast_backend.h"
#include "backends/executable.h"

namespace kpt {

std::unique_ptr<Executable> compile_graph(const graph::Graph& graph, const KvLayout& kv,
                                          const CompileOptions& options) {
  const std::string& device = options.device;
  if (device == "cpu") {
    // reference runs the oracle executable; every other level the fast one (oneDNN, fused kernels).
    return options.level == Level::kReference ? cpu::compile(graph, kv) : cpu::compile_fast(graph, kv);
  }
  throw Error(ErrorCode::kUnsupported,
              fmt::format("device '{}' is not available: this build has no CUDA backend yet; use cpu", device));
}

}  // namespace kpt
