// The CUDA backend: compiles a graph for one GPU. This header is free of CUDA types so the
// registry and the runtime can include it; it exists only in builds with KPT_WITH_CUDA.
#pragma once

#include <memory>
#include <string>

#include "backends/executable.h"

namespace kpt::cuda {

// Number of usable GPUs; 0 when there is no driver or no device (never throws).
int device_count();
// "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB)"; throws for a bad ordinal.
std::string device_description(int ordinal);
// Why device_count() is 0, from the CUDA runtime ("no CUDA-capable device is detected", ...).
std::string unavailable_reason();

bool supports(const graph::Node& node);

// Weights are uploaded here: fp32 at reference/conservative, GEMM weights as bf16 at balanced and
// above (fp32 accumulation; norms, softmax and the residual stream stay fp32).
std::unique_ptr<Executable> compile(const graph::Graph& graph, const KvLayout& kv, int ordinal, Level level);

// cudaMalloc calls made so far by the activation allocator of a CUDA executable (for tests:
// after warm-up a decode step must make none).
int64_t activation_allocations(const Executable& exec);

// Kernel launches of the most recent run() of any CUDA executable in this process (a replayed
// graph counts the launches of the step it captured). For benchmarks.
int64_t last_run_launches();

// Decode steps (one new token per row) are captured as a CUDA graph per batch size and replayed;
// other shapes (encoder calls, prefills) are captured when the same shape comes a second time (at
// most 4 such shapes). On by default, off with KPT_CUDA_GRAPHS=0 in the environment or here
// (tests compare the two).
void set_cuda_graphs(Executable& exec, bool enabled);

}  // namespace kpt::cuda
