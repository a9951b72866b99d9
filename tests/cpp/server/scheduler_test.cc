// Continuous batching must not change what a request generates: every request, run through the
// scheduler beside others (joining mid-batch, prefilled in chunks), gives the tokens it gives
// alone through Engine::generate. Plus cancellation, back-pressure and time-outs.
#include <condition_variable>
#include <future>
#include <mutex>

#include <gtest/gtest.h>

#include "runtime/engine_access.h"
#include "serve/scheduler.h"
#include "test_util.h"

namespace kpt::serve {
namespace {

struct Outcome {
  std::vector<int64_t> tokens;
  Finish finish = Finish::kError;
  int64_t generated = 0;
};

// A request whose tokens are collected; `done` is fulfilled when it finishes.
std::shared_ptr<GenerationRequest> collecting(std::vector<int64_t> prompt, GenerateOptions o,
                                              std::vector<int64_t> eos, std::shared_ptr<Outcome> out,
                                              std::shared_ptr<std::promise<void>> done) {
  auto r = std::make_shared<GenerationRequest>();
  r->prompt = std::move(prompt);
  r->options = o;
  r->eos = std::move(eos);
  r->on_token = [out](int64_t t) {
    out->tokens.push_back(t);
    return true;
  };
  r->on_finish = [out, done](Finish f, int64_t n, const std::string&) {
    out->finish = f;
    out->generated = n;
    done->set_value();
  };
  return r;
}

class SchedulerTest : public ::testing::TestWithParam<Level> {};

TEST_P(SchedulerTest, BatchedEqualsAloneGreedyAndSeeded) {
  EngineOptions eo;
  eo.level = GetParam();
  eo.device = "cpu";
  auto engine = Engine::load((test::fixtures_dir() / "llama_gqa3_headdim").string(), eo);
  const int64_t vocab = engine->info().vocab_size;
  std::vector<std::vector<int64_t>> prompts;
  for (int p = 0; p < 6; ++p) {
    std::vector<int64_t> ids;
    for (int i = 0; i < 3 + 7 * p; ++i) ids.push_back((17 * i + 31 * p + 5) % vocab);
    prompts.push_back(ids);
  }
  std::vector<GenerateOptions> opts(prompts.size());
  for (size_t p = 0; p < prompts.size(); ++p) {
    opts[p].max_new_tokens = 6 + static_cast<int64_t>(p) * 3;
    if (p % 2 == 1) {  // seeded sampling for every other request
      opts[p].do_sample = true;
      opts[p].temperature = 0.9;
      opts[p].top_k = 20;
      opts[p].top_p = 0.95;
      opts[p].seed = 1000 + p;
    }
    opts[p].eos_token_ids = std::vector<int64_t>{};  // run to max_new_tokens: longer comparisons
  }
  std::vector<std::vector<int64_t>> alone;
  for (size_t p = 0; p < prompts.size(); ++p) alone.push_back(engine->generate({prompts[p]}, opts[p]).new_ids[0]);

  // All running sequences in one decode call, and at most 2 rows per call (what CUDA needs).
  for (int64_t max_rows : {int64_t{0}, int64_t{2}}) {
    SCOPED_TRACE(max_rows);
    Metrics metrics;
    SchedulerOptions so;
    so.max_concurrent = 4;     // 6 requests: two join while others decode
    so.max_batch_tokens = 9;   // prompts of up to 38 tokens are prefilled in chunks
    so.min_prefill_chunk = 4;
    so.max_decode_rows = max_rows;
    Scheduler scheduler(runtime::engine_session(*engine), metrics, so);
    std::vector<std::shared_ptr<Outcome>> outs;
    std::vector<std::future<void>> futures;
    for (size_t p = 0; p < prompts.size(); ++p) {
      auto out = std::make_shared<Outcome>();
      auto done = std::make_shared<std::promise<void>>();
      futures.push_back(done->get_future());
      outs.push_back(out);
      ASSERT_EQ(scheduler.submit(collecting(prompts[p], opts[p], {}, out, done)), Admission::kAccepted);
    }
    for (auto& f : futures) ASSERT_EQ(f.wait_for(std::chrono::seconds(60)), std::future_status::ready);
    for (size_t p = 0; p < prompts.size(); ++p) {
      EXPECT_EQ(outs[p]->tokens, alone[p]) << "request " << p;
      EXPECT_EQ(outs[p]->finish, Finish::kLength);
      EXPECT_EQ(outs[p]->generated, opts[p].max_new_tokens);
    }
    EXPECT_EQ(runtime::engine_session(*engine).cache().blocks_in_use(), 0) << "finished sequences keep KV blocks";
    const std::string m = metrics.render(scheduler.gauges(), true);
    EXPECT_NE(m.find("kpt_time_to_first_token_seconds_count 6"), std::string::npos) << m;
    auto sample = [&](const std::string& name) {
      const size_t at = m.find(name);
      return at == std::string::npos ? -1.0 : std::stod(m.substr(at + name.size()));
    };
    const double steps = sample("kpt_batch_size_count "), small = sample("kpt_batch_size_bucket{le=\"2\"} ");
    EXPECT_GT(steps, 0);
    if (max_rows == 2) {
      EXPECT_EQ(small, steps) << "a decode call had more than 2 rows";
    } else {
      EXPECT_LT(small, steps) << "no decode call batched more than 2 rows";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Levels, SchedulerTest, ::testing::Values(Level::kReference, Level::kConservative),
                         [](const auto& p) { return std::string(level_name(p.param)); });

TEST(Scheduler, EosFinishesAndIsNotDelivered) {
  EngineOptions eo;
  eo.device = "cpu";
  auto engine = Engine::load((test::fixtures_dir() / "llama_gqa3_headdim").string(), eo);
  GenerateOptions o;
  o.max_new_tokens = 8;
  o.eos_token_ids = std::vector<int64_t>{};
  const std::vector<int64_t> prompt{3, 9, 27, 81};
  const auto alone = engine->generate({prompt}, o).new_ids[0];
  ASSERT_GE(alone.size(), 3u);
  Metrics metrics;
  Scheduler scheduler(runtime::engine_session(*engine), metrics, {});
  auto out = std::make_shared<Outcome>();
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  const int64_t eos = alone[2];  // the third token plays eos (it may occur earlier, too)
  const auto hit = std::find(alone.begin(), alone.end(), eos);
  scheduler.submit(collecting(prompt, o, {eos}, out, done));
  ASSERT_EQ(fut.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(out->finish, Finish::kEos);
  EXPECT_EQ(out->tokens, std::vector<int64_t>(alone.begin(), hit));
  EXPECT_EQ(out->generated, hit - alone.begin() + 1);  // eos counts as generated (usage), is not delivered
}

TEST(Scheduler, CancelFreesTheSequenceAndQueueFullRefuses) {
  EngineOptions eo;
  eo.device = "cpu";
  auto engine = Engine::load((test::fixtures_dir() / "llama_gqa3_headdim").string(), eo);
  Metrics metrics;
  SchedulerOptions so;
  so.max_concurrent = 1;
  so.max_queue = 1;
  Scheduler scheduler(runtime::engine_session(*engine), metrics, so);

  // The first request holds the scheduler thread inside on_token until released, so the
  // occupancy is known when the others arrive.
  std::mutex m;
  std::condition_variable cv;
  bool inside = false, release = false;
  GenerateOptions o;
  o.max_new_tokens = 1000;
  auto first = std::make_shared<GenerationRequest>();
  first->prompt = {1, 2, 3, 4, 5};
  first->options = o;
  std::promise<Finish> first_done;
  first->on_token = [&](int64_t) {
    std::unique_lock<std::mutex> lock(m);
    inside = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    return true;
  };
  first->on_finish = [&](Finish f, int64_t, const std::string&) { first_done.set_value(f); };
  ASSERT_EQ(scheduler.submit(first), Admission::kAccepted);
  {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return inside; });
  }
  auto out = std::make_shared<Outcome>();
  auto done = std::make_shared<std::promise<void>>();
  auto second_done = done->get_future();
  GenerateOptions short_o;
  short_o.max_new_tokens = 2;
  EXPECT_EQ(scheduler.submit(collecting({7, 8}, short_o, {}, out, done)), Admission::kAccepted);
  auto refused = std::make_shared<GenerationRequest>();
  refused->prompt = {9};
  EXPECT_EQ(scheduler.submit(refused), Admission::kQueueFull);
  EXPECT_EQ(scheduler.gauges().queue_depth, 1);
  EXPECT_GT(runtime::engine_session(*engine).cache().blocks_in_use(), 0);

  first->cancel = true;  // the client left
  {
    std::lock_guard<std::mutex> lock(m);
    release = true;
  }
  cv.notify_all();
  auto f1 = first_done.get_future();
  ASSERT_EQ(f1.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(f1.get(), Finish::kCancelled);
  ASSERT_EQ(second_done.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(out->finish, Finish::kLength);
  EXPECT_EQ(out->tokens.size(), 2u);
  scheduler.shutdown(true);
  EXPECT_EQ(runtime::engine_session(*engine).cache().blocks_in_use(), 0);
  EXPECT_EQ(scheduler.submit(refused), Admission::kShuttingDown);
}

TEST(Scheduler, DeadlinePassedTimesOut) {
  EngineOptions eo;
  eo.device = "cpu";
  auto engine = Engine::load((test::fixtures_dir() / "llama_gqa3_headdim").string(), eo);
  Metrics metrics;
  Scheduler scheduler(runtime::engine_session(*engine), metrics, {});
  auto out = std::make_shared<Outcome>();
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  GenerateOptions o;
  o.max_new_tokens = 5;
  auto r = collecting({1, 2, 3}, o, {}, out, done);
  r->deadline = Clock::now() - std::chrono::seconds(1);
  scheduler.submit(r);
  ASSERT_EQ(fut.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(out->finish, Finish::kTimeout);
  EXPECT_TRUE(out->tokens.empty());
}

TEST(Scheduler, EmbeddingsMatchForwardOfEachInputAlone) {
  EngineOptions eo;
  eo.device = "cpu";
  auto engine = Engine::load((test::fixtures_dir() / "bert_tokentypes").string(), eo);
  Metrics metrics;
  Scheduler scheduler(runtime::engine_session(*engine), metrics, {});
  auto req = std::make_shared<EmbeddingRequest>();
  req->inputs = {{2, 5, 7, 11, 3}, {2, 9, 3}};
  std::promise<std::vector<float>> got;
  req->on_done = [&](const Tensor& hidden, const std::vector<std::vector<int64_t>>& mask, const std::string& error) {
    EXPECT_TRUE(error.empty()) << error;
    EXPECT_EQ(mask[1], (std::vector<int64_t>{1, 1, 1, 0, 0}));
    const float* h = hidden.data<float>();
    got.set_value(std::vector<float>(h, h + hidden.numel()));
  };
  scheduler.submit(req);
  auto fut = got.get_future();
  ASSERT_EQ(fut.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  const std::vector<float> batched = fut.get();
  const int64_t hidden = engine->info().hidden_size;
  Tensor alone = engine->forward({{{2, 9, 3}}, {}, {}});  // [1, 3, H]
  for (int64_t i = 0; i < 3 * hidden; ++i) {
    EXPECT_NEAR(batched[static_cast<size_t>(5 * hidden + i)], alone.data<float>()[i], 1e-5) << i;
  }
}

}  // namespace
}  // namespace kpt::serve
