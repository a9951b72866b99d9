#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_set>

#include <fmt/format.h>

namespace kpt::runtime {

void validate_sampling(const GenerateOptions& o) {
  if (o.max_new_tokens < 0) {
    throw Error(ErrorCode::kInvalidArgument, fmt::format("max_new_tokens must be >= 0, got {}", o.max_new_tokens));
  }
  if (o.repetition_penalty <= 0 || !std::isfinite(o.repetition_penalty)) {
    throw Error(ErrorCode::kInvalidArgument, fmt::format("repetition_penalty must be > 0, got {}", o.repetition_penalty));
  }
  if (!o.do_sample) return;
  if (!(o.temperature > 0) || !std::isfinite(o.temperature)) {
    throw Error(ErrorCode::kInvalidArgument, fmt::format("temperature must be > 0 when sampling, got {}", o.temperature));
  }
  if (o.top_k < 0) throw Error(ErrorCode::kInvalidArgument, fmt::format("top_k must be >= 0, got {}", o.top_k));
  if (!(o.top_p > 0 && o.top_p <= 1)) {
    throw Error(ErrorCode::kInvalidArgument, fmt::format("top_p must be in (0, 1], got {}", o.top_p));
  }
}

void apply_repetition_penalty(std::span<float> logits, std::span<const int64_t> history, double penalty) {
  if (penalty == 1.0) return;
  std::unordered_set<int64_t> seen(history.begin(), history.end());
  const float p = static_cast<float>(penalty);
  for (int64_t id : seen) {
    if (id < 0 || id >= static_cast<int64_t>(logits.size())) continue;
    float& l = logits[static_cast<size_t>(id)];
    l = l < 0 ? l * p : l / p;
  }
}

int64_t argmax(std::span<const float> logits) {
  // First maximum, as torch.argmax.
  return static_cast<int64_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Sampler::Sampler(uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

double Sampler::uniform() {
  // xoshiro256**: the same stream on every platform.
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return static_cast<double>(result >> 11) * 0x1.0p-53;
}

int64_t Sampler::next(std::span<float> logits, std::span<const int64_t> history, const GenerateOptions& o) {
  apply_repetition_penalty(logits, history, o.repetition_penalty);
  if (!o.do_sample) return argmax(logits);
  return choose_sampled(logits, o, uniform());
}

int64_t choose_sampled(std::span<const float> logits, const GenerateOptions& o, double r_unit) {
  const size_t n = logits.size();
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  size_t keep = n;
  if (o.top_k > 0 && static_cast<size_t>(o.top_k) < n) keep = static_cast<size_t>(o.top_k);
  // Descending by logit; stable so equal logits keep id order.
  std::partial_sort(order.begin(), order.begin() + static_cast<long>(keep), order.end(), [&](int32_t a, int32_t b) {
    return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
           (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
  });
  order.resize(keep);
  const double max_logit = logits[static_cast<size_t>(order[0])];
  std::vector<double> probs(keep);
  double total = 0;
  for (size_t i = 0; i < keep; ++i) {
    probs[i] = std::exp((logits[static_cast<size_t>(order[i])] - max_logit) / o.temperature);
    total += probs[i];
  }
  if (o.top_p < 1.0) {
    // Smallest prefix whose probability reaches top_p (at least one token).
    double cum = 0;
    size_t cut = keep;
    for (size_t i = 0; i < keep; ++i) {
      cum += probs[i] / total;
      if (cum >= o.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    total = std::accumulate(probs.begin(), probs.begin() + static_cast<long>(keep), 0.0);
  }
  double r = r_unit * total;
  for (size_t i = 0; i < keep; ++i) {
    r -= probs[i];
    if (r < 0) return order[i];
  }
  return order[keep - 1];
}

}  // namespace kpt::runtime
