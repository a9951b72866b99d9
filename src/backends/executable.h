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
  virtual std::string device() const = 0;
};

struct CompileOptions {
  std::string device = "cpu";  // "cpu", "cuda:0", ...
  Level level = Level::kReference;
};

// Picks the backend for options.device. Throws kUnsupported when this build or machine cannot
// serve it. The graph must outlive the Executable.
std::unique_ptr<Executable> compile_graph(const graph::Graph& graph, const KvLayout& kv, const CompileOptions& options);

}  // namespace kpt
