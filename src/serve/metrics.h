// Prometheus metrics of the server, rendered in the text exposition format (version 0.0.4).
// Counters and histograms are updated from the HTTP threads and the scheduler thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace kpt::serve {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // Appends `name_bucket{le=...}`, `name_sum`, `name_count` lines.
  void render(std::string& out, const std::string& name) const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); last one is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

// Gauges the scheduler reports (read when /metrics is scraped).
struct SchedulerGauges {
  int64_t queue_depth = 0;        // waiting to be admitted
  int64_t running = 0;            // sequences in the running batch
  int64_t kv_blocks_used = 0;
  int64_t kv_blocks_capacity = 0;
  int64_t kv_block_size = 0;
};

class Metrics {
 public:
  Metrics();
  void count_request(const std::string& route, int status);
  void count_tokens(int64_t prompt_tokens, int64_t generated_tokens);
  void observe_ttft(double seconds) { ttft_.observe(seconds); }
  void observe_itl(double seconds) { itl_.observe(seconds); }
  void observe_batch(int64_t rows) { batch_.observe(static_cast<double>(rows)); }
  void observe_request(double seconds) { request_seconds_.observe(seconds); }
  void count_rejected() { rejected_.fetch_add(1); }
  void count_cancelled() { cancelled_.fetch_add(1); }
  // Generated tokens per second over the last few seconds (a sliding window of decode steps).
  void note_step_tokens(int64_t tokens);

  std::string render(const SchedulerGauges& gauges, bool ready) const;

 private:
  double recent_tokens_per_second() const;

  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::atomic<uint64_t> prompt_tokens_{0}, generated_tokens_{0}, rejected_{0}, cancelled_{0};
  Histogram ttft_, itl_, batch_, request_seconds_;
  std::vector<std::pair<double, int64_t>> window_;  // (time s, tokens) of recent steps
};

}  // namespace kpt::serve
