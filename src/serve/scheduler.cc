#include "serve/scheduler.h"

#include <algorithm>
#include <cstdint>

#include <fmt/format.h>

#include <cstdio>

namespace kpt::serve {

namespace {
double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
}  // namespace

const char* finish_name(Finish f) {
  switch (f) {
    case Finish::kEos: return "eos";
    case Finish::kLength: return "length";
    case Finish::kStop: return "stop";
    case Finish::kCancelled: return "cancelled";
    case Finish::kTimeout: return "timeout";
    case Finish::kError: return "error";
  }
  return "?";
}

Scheduler::Active::Active(std::shared_ptr<GenerationRequest> r)
    : req(std::move(r)), history(req->prompt), sampler(req->options.seed) {}

Scheduler::Scheduler(runtime::Session& session, Metrics& metrics, SchedulerOptions options)
    : session_(session), metrics_(metrics), options_(options) {
  KPT_CHECK(options_.max_concurrent > 0 && options_.max_queue >= 0 && options_.max_batch_tokens > 0,
            "bad scheduler options");
  kv_capacity_ = session_.cache().capacity_blocks();
  worker_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { shutdown(false); }

Admission Scheduler::submit(std::shared_ptr<GenerationRequest> request) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return Admission::kShuttingDown;
    // Requests that can start at once do not count against the queue.
    const int64_t free_slots = options_.max_concurrent - n_running_.load();
    if (static_cast<int64_t>(waiting_.size()) >= options_.max_queue + std::max<int64_t>(free_slots, 0)) {
      return Admission::kQueueFull;
    }
    waiting_.push_back(std::move(request));
  }
  cv_.notify_one();
  return Admission::kAccepted;
}

Admission Scheduler::submit(std::shared_ptr<EmbeddingRequest> request) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return Admission::kShuttingDown;
    if (static_cast<int64_t>(embeddings_.size()) >= options_.max_queue + options_.max_concurrent) {
      return Admission::kQueueFull;
    }
    embeddings_.push_back(std::move(request));
  }
  cv_.notify_one();
  return Admission::kAccepted;
}

void Scheduler::shutdown(bool drain) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopping_) {
      stopping_ = true;
      drain_ = drain;
    }
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

SchedulerGauges Scheduler::gauges() const {
  SchedulerGauges g;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    g.queue_depth = static_cast<int64_t>(waiting_.size() + embeddings_.size());
  }
  g.running = n_running_.load();
  g.kv_blocks_used = kv_used_.load();
  g.kv_blocks_capacity = kv_capacity_.load();
  g.kv_block_size = session_.cache().block_size();
  return g;
}

void Scheduler::loop() {
  for (;;) {
    std::vector<std::shared_ptr<EmbeddingRequest>> embeds;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !waiting_.empty() || !embeddings_.empty() || !running_.empty(); });
      if (stopping_ && !drain_) {
        for (auto& r : waiting_) r->cancel = true;
        for (auto& a : running_) a->req->cancel = true;
      }
      // First come, first served: the oldest waiting requests join as slots free up.
      while (static_cast<int64_t>(running_.size()) < options_.max_concurrent && !waiting_.empty()) {
        running_.push_back(std::make_unique<Active>(std::move(waiting_.front())));
        waiting_.pop_front();
        ++n_running_;  // decremented in finish(), before the request's on_finish runs
      }
      embeds.assign(embeddings_.begin(), embeddings_.end());
      embeddings_.clear();
      if (stopping_ && running_.empty() && embeds.empty() && waiting_.empty()) break;
    }
    for (auto& e : embeds) {
      if (stopping_ && !drain_) {
        e->on_done(Tensor(), {}, "the server is shutting down");
        continue;
      }
      run_embeddings(e);
    }
    step();
    kv_used_ = session_.cache().blocks_in_use();
    kv_capacity_ = session_.cache().capacity_blocks();
  }
  n_running_ = 0;
}

void Scheduler::run_embeddings(const std::shared_ptr<EmbeddingRequest>& req) {
  size_t longest = 0;
  for (const auto& in : req->inputs) longest = std::max(longest, in.size());
  ForwardInputs fi;
  for (const auto& in : req->inputs) {
    std::vector<int64_t> ids = in, mask(in.size(), 1);
    ids.resize(longest, 0);
    mask.resize(longest, 0);
    fi.input_ids.push_back(std::move(ids));
    fi.attention_mask.push_back(std::move(mask));
  }
  Tensor hidden;
  std::string error;
  try {
    hidden = session_.forward(fi);  // [B, S, H]
  } catch (const std::exception& e) {
    error = e.what();
  }
  req->on_done(hidden, fi.attention_mask, error);
}

void Scheduler::finish(Active& a, Finish f, const std::string& error) {
  if (a.seq >= 0) {
    session_.cache().free_sequence(a.seq);
    a.seq = -1;
  }
  // A client told of the end may send its next request at once: the slot must look free by then.
  --n_running_;
  if (f == Finish::kCancelled || f == Finish::kTimeout) metrics_.count_cancelled();
  metrics_.observe_request(seconds_between(a.req->arrival, Clock::now()));
  if (a.req->on_finish) a.req->on_finish(f, a.generated, error);
  a.req.reset();  // marks the slot for removal
}

bool Scheduler::greedy(const Active& a) {
  return !a.req->options.do_sample && a.req->options.repetition_penalty == 1.0;
}

bool Scheduler::deliver(Active& a, float* logits_row) {
  const int64_t vocab = session_.info().vocab_size;
  std::span<float> row(logits_row, static_cast<size_t>(vocab));
  return deliver_token(a, a.sampler.next(row, a.history, a.req->options));
}

bool Scheduler::deliver_token(Active& a, int64_t tok) {
  const auto now = Clock::now();
  if (a.generated == 0) {
    metrics_.observe_ttft(seconds_between(a.req->arrival, now));
  } else {
    metrics_.observe_itl(seconds_between(a.last_token, now));
  }
  a.last_token = now;
  ++a.generated;
  a.history.push_back(tok);
  metrics_.count_tokens(0, 1);
  if (std::find(a.req->eos.begin(), a.req->eos.end(), tok) != a.req->eos.end()) {
    finish(a, Finish::kEos);
    return true;
  }
  if (a.req->on_token && !a.req->on_token(tok)) {
    finish(a, a.req->cancel.load() ? Finish::kCancelled : Finish::kStop);  // the caller may have left
    return true;
  }
  if (a.generated >= a.req->options.max_new_tokens) {
    finish(a, Finish::kLength);
    return true;
  }
  a.next = tok;
  return false;
}

void Scheduler::step() {
  const auto now = Clock::now();
  // Leave between steps: cancelled (client gone, shutdown) and timed-out requests.
  for (auto& a : running_) {
    if (a->req->cancel.load()) {
      finish(*a, Finish::kCancelled);
    } else if (now > a->req->deadline) {
      finish(*a, Finish::kTimeout, "the request timed out");
    } else if (a->seq < 0) {
      a->seq = session_.cache().new_sequence();
      if (a->req->options.max_new_tokens == 0) finish(*a, Finish::kLength);
    }
  }
  auto drop_finished = [&] {
    running_.erase(std::remove_if(running_.begin(), running_.end(), [](const auto& a) { return !a->req; }),
                   running_.end());
  };
  drop_finished();

  // 1. One decode step for every sequence past its prompt.
  std::vector<Active*> decoders;
  for (auto& a : running_) {
    if (a->next >= 0) decoders.push_back(a.get());
  }
  const size_t group = options_.max_decode_rows > 0 ? static_cast<size_t>(options_.max_decode_rows) : SIZE_MAX;
  for (size_t first = 0; first < decoders.size(); first += group) {
    const std::vector<Active*> rows(decoders.begin() + static_cast<std::ptrdiff_t>(first),
                                    decoders.begin() + static_cast<std::ptrdiff_t>(std::min(decoders.size(), first + group)));
    std::vector<int64_t> seqs;
    runtime::Rows ids, mask;
    for (Active* a : rows) {
      seqs.push_back(a->seq);
      ids.push_back({a->next});
      mask.push_back({1});
    }
    try {
      // All rows greedy: only their argmax ids come back (on a GPU the logits stay there).
      if (std::all_of(rows.begin(), rows.end(), [](const Active* a) { return greedy(*a); })) {
        const std::vector<int64_t> toks = session_.step_argmax(seqs, ids, mask);
        metrics_.observe_batch(static_cast<int64_t>(rows.size()));
        metrics_.note_step_tokens(static_cast<int64_t>(rows.size()));
        for (size_t i = 0; i < rows.size(); ++i) deliver_token(*rows[i], toks[i]);
        continue;
      }
      Tensor logits = session_.step_last_logits(seqs, ids, mask);  // [n, 1, V]
      metrics_.observe_batch(static_cast<int64_t>(rows.size()));
      metrics_.note_step_tokens(static_cast<int64_t>(rows.size()));
      const int64_t vocab = session_.info().vocab_size;
      for (size_t i = 0; i < rows.size(); ++i) deliver(*rows[i], logits.data<float>() + static_cast<int64_t>(i) * vocab);
    } catch (const std::exception& e) {
      fmt::print(stderr, "warning: decode step of {} sequences failed: {}\n", rows.size(), e.what());
      for (Active* a : rows) finish(*a, Finish::kError, e.what());
    }
  }
  if (!decoders.empty()) drop_finished();

  // 2. Prompt chunks with the rest of the token budget, oldest request first.
  int64_t budget = std::max<int64_t>(options_.max_batch_tokens - static_cast<int64_t>(decoders.size()),
                                     options_.min_prefill_chunk);
  for (auto& a : running_) {
    if (budget <= 0) break;
    if (!a->req || a->next >= 0) continue;
    const size_t left = a->req->prompt.size() - a->prefilled;
    const size_t n = std::min<size_t>(left, static_cast<size_t>(budget));
    std::vector<int64_t> chunk(a->req->prompt.begin() + static_cast<std::ptrdiff_t>(a->prefilled),
                               a->req->prompt.begin() + static_cast<std::ptrdiff_t>(a->prefilled + n));
    try {
      const runtime::Rows chunk_mask = {std::vector<int64_t>(n, 1)};
      if (greedy(*a)) {
        const int64_t tok = session_.step_argmax({a->seq}, {chunk}, chunk_mask).at(0);
        a->prefilled += n;
        budget -= static_cast<int64_t>(n);
        metrics_.count_tokens(static_cast<int64_t>(n), 0);
        if (a->prefilled == a->req->prompt.size()) deliver_token(*a, tok);
        continue;
      }
      Tensor logits = session_.step_last_logits({a->seq}, {chunk}, chunk_mask);  // [1, 1, V]
      a->prefilled += n;
      budget -= static_cast<int64_t>(n);
      metrics_.count_tokens(static_cast<int64_t>(n), 0);
      if (a->prefilled == a->req->prompt.size()) deliver(*a, logits.data<float>());
    } catch (const std::exception& e) {
      fmt::print(stderr, "warning: prefill of a {}-token prompt failed: {}\n", a->req->prompt.size(), e.what());
      finish(*a, Finish::kError, e.what());
    }
  }
  drop_finished();
}

}  // namespace kpt::serve
