// The one place that maps a device name to a backend.
#include <fmt/format.h>

#include "backends/cpu/backend.h"
#include "backends/cpu/fast_backend.h"
#ifdef KPT_WITH_CUDA
#include "backends/cuda/backend.h"
#endif
#include "backends/executable.h"

namespace kpt {

std::unique_ptr<Executable> compile_graph(const graph::Graph& graph, const KvLayout& kv,
                                          const CompileOptions& options) {
  const std::string& device = options.device;
  if (device == "cpu") {
    // reference runs the oracle executable; every other level the fast one (oneDNN, fused kernels).
    return options.level == Level::kReference ? cpu::compile(graph, kv) : cpu::compile_fast(graph, kv);
  }
  if (device == "cuda" || device.rfind("cuda:", 0) == 0) {
    int ordinal = 0;
    if (device != "cuda") {
      const std::string num = device.substr(5);
      if (num.empty() || num.size() > 3 || num.find_first_not_of("0123456789") != std::string::npos) {
        throw Error(ErrorCode::kInvalidArgument, fmt::format("bad device '{}': write cuda or cuda:N", device));
      }
      ordinal = std::stoi(num);
    }
#ifdef KPT_WITH_CUDA
    return cuda::compile(graph, kv, ordinal, options.level);
#else
    (void)ordinal;
    throw Error(ErrorCode::kUnsupported,
                fmt::format("device '{}' is not available: this build has no CUDA backend (configure with "
                            "-DKPT_ENABLE_CUDA=ON); use cpu",
                            device));
#endif
  }
  throw Error(ErrorCode::kUnsupported,
              fmt::format("unknown device '{}'; choose cpu, cuda or cuda:N", device));
}

}  // namespace kpt
