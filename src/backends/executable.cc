#include "backends/executable.h"

#include <span>

#include "runtime/sampler.h"

namespace kpt {

Tensor Executable::run_argmax(const std::map<std::string, Tensor>& inputs, const KvStep& kv) {
  const Tensor logits = run(inputs, kv).at(0);
  const int64_t n = logits.dim(-1), rows = n > 0 ? logits.numel() / n : 0;
  Tensor ids = Tensor::empty(DType::kI64, {rows});
  for (int64_t r = 0; r < rows; ++r) {
    ids.data<int64_t>()[r] = runtime::argmax(std::span<const float>(logits.data<float>() + r * n, static_cast<size_t>(n)));
  }
  return ids;
}

}  // namespace kpt
