// Peers in the same harness: another engine (PyTorch eager, torch.compile, ONNX Runtime,
// llama.cpp) runs the same workload — same model directory, same token ids, same repetitions —
// in a child process that speaks one JSON object per line (benchmarks/peers/peer.py). The child
// runs one repetition per request, so a peer interleaves with our levels like another variant and
// its results carry the same metrics and raw samples.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bench/result.h"
#include "bench/runner.h"

namespace kpt::bench {

// The peers peer.py knows. "pytorch": transformers eager (fp32 on CPU, bf16 on CUDA);
// "torch-compile": the same model under torch.compile; "onnxruntime": an ONNX export of the same
// weights through ORT's transformer optimizer (forward workloads); "llamacpp": llama-cpp-python
// on the GGUF file the weights came from (generate, batch 1).
const std::vector<std::string>& known_peers();

// A peer could not run this workload (not installed, unsupported kind/shape/device): the run goes
// on without it and the result lists it under "skipped" with this message.
class PeerUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Where peer.py is: $KPT_PEER_SCRIPT, ./benchmarks/peers/peer.py, or next to the sources this
// binary was built from. The interpreter is $KPT_PYTHON or python3.
std::string find_peer_script();

class PeerRunner : public RepetitionRunner {
 public:
  // Starts the child and loads the model in it; throws PeerUnavailable when the peer cannot run
  // this workload, kpt::Error on a protocol or process failure.
  PeerRunner(const WorkloadSpec& spec, const Progress& progress);
  ~PeerRunner() override;
  int repetitions() const override;
  void run_repetition(int i) override;
  WorkloadResult finish() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kpt::bench
