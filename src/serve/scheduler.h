// Continuous batching over the paged KV cache. One thread owns the Session; every iteration it
//   1. admits waiting requests first come, first served while fewer than max_concurrent run,
//   2. runs ONE decode step for every sequence whose prompt is done (a single batched call),
//   3. spends the rest of the step's token budget (max_batch_tokens) on prompt chunks, so a long
//      prompt is prefilled over several iterations and never stalls the decoding sequences.
// Finished, cancelled and timed-out sequences leave between steps and free their KV blocks at once.
// Each request samples with its own seeded sampler and history, so batching does not change what
// a request generates.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kpt/engine.h"
#include "runtime/sampler.h"
#include "runtime/session.h"
#include "serve/metrics.h"

namespace kpt::serve {

using Clock = std::chrono::steady_clock;

enum class Finish { kEos, kLength, kStop, kCancelled, kTimeout, kError };
const char* finish_name(Finish f);

struct GenerationRequest {
  std::vector<int64_t> prompt;
  GenerateOptions options;        // max_new_tokens and sampling; on_token/eos are not used here
  std::vector<int64_t> eos;       // stop token ids
  Clock::time_point arrival = Clock::now();
  Clock::time_point deadline = Clock::time_point::max();
  // Called on the scheduler thread for every generated token that is not an eos token; return
  // false to finish the request (a stop sequence matched).
  std::function<bool(int64_t token)> on_token;
  // Called exactly once, on the scheduler thread (or in submit's caller when refused).
  std::function<void(Finish finish, int64_t generated, const std::string& error)> on_finish;
  std::atomic<bool> cancel{false};  // set from any thread; honoured between steps
};

// An encoder request: every input is run in one forward (right-padded), result [B, S, H].
struct EmbeddingRequest {
  std::vector<std::vector<int64_t>> inputs;
  std::function<void(const Tensor& hidden, const std::vector<std::vector<int64_t>>& mask, const std::string& error)>
      on_done;
};

struct SchedulerOptions {
  int64_t max_concurrent = 16;     // sequences in the running batch
  int64_t max_queue = 64;          // waiting requests before submit refuses (HTTP 429)
  int64_t max_batch_tokens = 512;  // tokens per step: decode rows + prompt chunk tokens
  int64_t min_prefill_chunk = 32;  // a prompt always advances by at least this much per step
  // Rows per decode call (0: all running sequences in one call). Backends whose kernels change
  // with the row count (the CUDA GEMV serves up to 8 rows, cuBLASLt on bf16 activations more) give
  // a request different bits in a larger batch; capping the rows keeps batching invisible.
  int64_t max_decode_rows = 0;
};

enum class Admission { kAccepted, kQueueFull, kShuttingDown };

class Scheduler {
 public:
  Scheduler(runtime::Session& session, Metrics& metrics, SchedulerOptions options);
  ~Scheduler();

  Admission submit(std::shared_ptr<GenerationRequest> request);
  Admission submit(std::shared_ptr<EmbeddingRequest> request);

  // Stops admitting; with drain, finishes what is queued and running first. Blocks until the
  // worker has exited.
  void shutdown(bool drain);

  SchedulerGauges gauges() const;
  const SchedulerOptions& options() const { return options_; }

 private:
  struct Active {
    std::shared_ptr<GenerationRequest> req;
    int64_t seq = -1;
    size_t prefilled = 0;
    int64_t next = -1;        // sampled, not yet fed to the model; -1 while prefilling
    int64_t generated = 0;
    std::vector<int64_t> history;
    runtime::Sampler sampler;
    Clock::time_point last_token;
    explicit Active(std::shared_ptr<GenerationRequest> r);
  };

  void loop();
  void step();
  void run_embeddings(const std::shared_ptr<EmbeddingRequest>& req);
  // Samples from one row of logits and delivers the token; returns true when the request ended.
  bool deliver(Active& a, float* logits_row);
  // Delivers a chosen token (counts, eos, stop, length); returns true when the request ended.
  bool deliver_token(Active& a, int64_t tok);
  // Plain greedy (no sampling, no repetition penalty): the backend can pick the token itself.
  static bool greedy(const Active& a);
  void finish(Active& a, Finish f, const std::string& error = {});

  runtime::Session& session_;
  Metrics& metrics_;
  SchedulerOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<GenerationRequest>> waiting_;
  std::deque<std::shared_ptr<EmbeddingRequest>> embeddings_;
  bool stopping_ = false, drain_ = false;
  std::vector<std::unique_ptr<Active>> running_;  // owned by the worker; size mirrored below
  std::atomic<int64_t> n_running_{0}, kv_used_{0}, kv_capacity_{0};
  std::thread worker_;
};

}  // namespace kpt::serve
