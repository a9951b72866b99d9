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

Tensor Executable::run_sample(const std::map<std::string, Tensor>& inputs, const KvStep& kv, const SampleParams& p) {
  const Tensor logits = run(inputs, kv).at(0);
  return sample_on_host(logits, p);
}

Tensor sample_on_host(const Tensor& logits, const Executable::SampleParams& p) {
  const int64_t n = logits.dim(-1), rows = n > 0 ? logits.numel() / n : 0;
  KPT_CHECK(static_cast<int64_t>(p.r.size()) == rows, "run_sample: one uniform draw per row");
  GenerateOptions o;
  o.do_sample = true;
  o.temperature = p.temperature;
  o.top_k = p.top_k;
  o.top_p = p.top_p;
  Tensor ids = Tensor::empty(DType::kI64, {rows});
  for (int64_t r = 0; r < rows; ++r) {
    ids.data<int64_t>()[r] = runtime::choose_sampled(
        std::span<const float>(logits.data<float>() + r * n, static_cast<size_t>(n)), o, p.r[static_cast<size_t>(r)]);
  }
  return ids;
}

}  // namespace kpt
