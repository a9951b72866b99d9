#include "serve/metrics.h"

#include <chrono>
#include <cmath>

#include <fmt/format.h>

namespace kpt::serve {

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
std::string le(double v) { return fmt::format("{}", v); }
constexpr double kWindowSeconds = 10.0;
}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  std::lock_guard<std::mutex> lock(mutex_);
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, le(bounds_[i]), cumulative);
  }
  cumulative += counts_.back();
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, cumulative, name, sum_, name,
                     count_);
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      itl_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}),
      batch_({1, 2, 4, 8, 16, 32, 64, 128}),
      request_seconds_({0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}) {}

void Metrics::count_request(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{route, status}];
}

void Metrics::count_tokens(int64_t prompt_tokens, int64_t generated_tokens) {
  prompt_tokens_.fetch_add(static_cast<uint64_t>(prompt_tokens));
  generated_tokens_.fetch_add(static_cast<uint64_t>(generated_tokens));
}

void Metrics::note_step_tokens(int64_t tokens) {
  const double t = now_s();
  std::lock_guard<std::mutex> lock(mutex_);
  window_.emplace_back(t, tokens);
  size_t drop = 0;
  while (drop < window_.size() && window_[drop].first < t - kWindowSeconds) ++drop;
  window_.erase(window_.begin(), window_.begin() + static_cast<std::ptrdiff_t>(drop));
}

double Metrics::recent_tokens_per_second() const {
  const double t = now_s();
  int64_t tokens = 0;
  for (const auto& [when, n] : window_) {
    if (when >= t - kWindowSeconds) tokens += n;
  }
  return static_cast<double>(tokens) / kWindowSeconds;
}

std::string Metrics::render(const SchedulerGauges& g, bool ready) const {
  std::string out;
  auto head = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  {
    std::lock_guard<std::mutex> lock(mutex_);
    head("kpt_requests_total", "counter", "HTTP requests by route and status code.");
    uint64_t errors = 0;
    for (const auto& [key, n] : requests_) {
      out += fmt::format("kpt_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, n);
      if (key.second >= 400) errors += n;
    }
    head("kpt_request_errors_total", "counter", "HTTP requests answered with a 4xx or 5xx status.");
    out += fmt::format("kpt_request_errors_total {}\n", errors);
    head("kpt_generation_tokens_per_second", "gauge", "Generated tokens per second over the last 10 s.");
    out += fmt::format("kpt_generation_tokens_per_second {:.3f}\n", recent_tokens_per_second());
  }
  head("kpt_prompt_tokens_total", "counter", "Prompt tokens processed (prefill).");
  out += fmt::format("kpt_prompt_tokens_total {}\n", prompt_tokens_.load());
  head("kpt_generation_tokens_total", "counter", "Tokens generated.");
  out += fmt::format("kpt_generation_tokens_total {}\n", generated_tokens_.load());
  head("kpt_requests_rejected_total", "counter", "Requests refused with 429 because the queue was full.");
  out += fmt::format("kpt_requests_rejected_total {}\n", rejected_.load());
  head("kpt_requests_cancelled_total", "counter", "Requests cancelled (client gone or time-out).");
  out += fmt::format("kpt_requests_cancelled_total {}\n", cancelled_.load());
  head("kpt_queue_depth", "gauge", "Requests waiting to join the running batch.");
  out += fmt::format("kpt_queue_depth {}\n", g.queue_depth);
  head("kpt_running_sequences", "gauge", "Sequences in the running batch.");
  out += fmt::format("kpt_running_sequences {}\n", g.running);
  head("kpt_kv_cache_blocks_used", "gauge", "Paged KV-cache blocks in use.");
  out += fmt::format("kpt_kv_cache_blocks_used {}\n", g.kv_blocks_used);
  head("kpt_kv_cache_blocks_capacity", "gauge", "Paged KV-cache blocks allocated (grows on demand).");
  out += fmt::format("kpt_kv_cache_blocks_capacity {}\n", g.kv_blocks_capacity);
  head("kpt_kv_cache_usage_ratio", "gauge", "Fraction of allocated KV-cache blocks in use.");
  out += fmt::format("kpt_kv_cache_usage_ratio {:.4f}\n",
                     g.kv_blocks_capacity > 0 ? static_cast<double>(g.kv_blocks_used) / g.kv_blocks_capacity : 0.0);
  head("kpt_model_ready", "gauge", "1 when the model is loaded and requests are accepted.");
  out += fmt::format("kpt_model_ready {}\n", ready ? 1 : 0);
  head("kpt_time_to_first_token_seconds", "histogram", "Time from request arrival to its first generated token.");
  ttft_.render(out, "kpt_time_to_first_token_seconds");
  head("kpt_inter_token_latency_seconds", "histogram", "Time between consecutive generated tokens of a request.");
  itl_.render(out, "kpt_inter_token_latency_seconds");
  head("kpt_batch_size", "histogram", "Sequences per decode step.");
  batch_.render(out, "kpt_batch_size");
  head("kpt_request_duration_seconds", "histogram", "Time from arrival to the last byte of generation.");
  request_seconds_.render(out, "kpt_request_duration_seconds");
  return out;
}

}  // namespace kpt::serve
