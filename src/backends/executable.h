// The interface every backend implements: a graph compiled for one device.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/attention_context.h"
#include "graph/ir.h"
#include "kpt/engine.h"
#include "kpt/tensor.h"

namespace kpt {

class Executable {
 public:
  virtual ~Executable() = default;
  // Inputs are host tensors by graph input name; outputs come back as host f32 tensors.
  // Symbolic dims are bound from the input shapes.
  virtual std::vector<Tensor> run(const std::map<std::string, Tensor>& inputs, const KvStep& kv) = 0;
  // Greedy decoding: the index of the first maximum (torch.argmax) over the last dimension of the
  // first output, as i64 [rows] (rows = all leading dimensions). The default runs run() and scans
  // on the host; a device backend takes the argmax where the logits are and copies back only ids.
  virtual Tensor run_argmax(const std::map<std::string, Tensor>& inputs, const KvStep& kv);
  // Sampling (do_sample, no repetition penalty): each row's next token drawn with its uniform
  // draw p.r[row], as runtime::choose_sampled; i64 [rows]. The default runs run() and samples on
  // the host; a device backend samples where the logits are where it can (CUDA: top_k in 1..1024
  // or a vocabulary of at most 1,024) and copies back only ids.
  struct SampleParams {
    double temperature = 1.0;
    int64_t top_k = 0;  // 0: off
    double top_p = 1.0;
    std::vector<double> r;  // per row of the first output, in [0, 1)
  };
  virtual Tensor run_sample(const std::map<std::string, Tensor>& inputs, const KvStep& kv, const SampleParams& p);
  virtual std::string device() const = 0;
};

// Executable::run_sample's host computation over logits [..., V] (also the CUDA fallback).
Tensor sample_on_host(const Tensor& logits, const Executable::SampleParams& p);

struct CompileOptions {
  std::string device = "cpu";  // "cpu", "cuda:0", ...
  Level level = Level::kReference;
};

// Picks the backend for options.device. Throws kUnsupported when this build or machine cannot
// serve it. The graph must outlive the Executable.
std::unique_ptr<Executable> compile_graph(const graph::Graph& graph, const KvLayout& kv, const CompileOptions& options);

}  // namespace kpt
