// The one place that maps a device name to a backend.
#include <fmt/format.h>

#include "backends/cpu/backend.h"
#include "backends/executable.h"

namespace kpt {

std::unique_ptr<Executable> compile_graph(const graph::Graph& graph, const KvLayout& kv,
                                          const CompileOptions& options) {
  const std::string& device = options.device;
  if (device == "cpu") return cpu::compile(graph, kv);
  throw Error(ErrorCode::kUnsupported,
              fmt::format("device '{}' is not available: this build has no CUDA backend yet; use cpu", device));
}

}  // namespace kpt
