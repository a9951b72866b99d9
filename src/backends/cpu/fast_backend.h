// The fast CPU executable (conservative and higher levels): oneDNN GEMMs with weights packed at
// load and fused epilogues, the fused kernels of kernels/fast_kernels.h, and the buffers the
// memory_plan pass assigned, kept across runs. The reference executable (backend.cc) stays the
// oracle and is untouched by any of this.
#pragma once

#include "backends/executable.h"

namespace kpt::cpu {

std::unique_ptr<Executable> compile_fast(const graph::Graph& graph, const KvLayout& kv);

}  // namespace kpt::cpu
