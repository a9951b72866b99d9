// Result JSON and SQLite history round trips; malformed results give clear errors.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "bench/environment.h"
#include "bench/history.h"
#include "bench/result.h"
#include "kpt/status.h"

namespace kpt::bench {
namespace {

namespace fs = std::filesystem;

fs::path temp_path(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("kpt_bench_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

BenchResult sample_result(double scale = 1.0) {
  BenchResult r;
  r.created_at = "2026-11-29T12:00:00Z";
  r.environment = {{"env_key", "abc"}, {"build", {{"git_commit", "0123456789abcdef"}}}};
  WorkloadResult g;
  g.spec.name = "gpt2";
  g.spec.kind = "generate";
  g.spec.batch = 1;
  g.spec.prompt_len = 32;
  g.spec.new_tokens = 16;
  g.spec.weights = "random";
  g.device_used = "cpu";
  g.n_parameters = 124439808;
  g.metrics["latency_ms"] = Metric{"ms", false, {10 * scale, 11 * scale, 12 * scale}};
  g.metrics["tokens_s"] = Metric{"tokens/s", true, {100 / scale, 90 / scale}};
  WorkloadResult f;
  f.spec.name = "bert";
  f.spec.kind = "forward";
  f.spec.seq = 64;
  f.metrics["latency_ms"] = Metric{"ms", false, {1.5, 1.25}};
  r.workloads = {g, f};
  return r;
}

void expect_same(const WorkloadResult& a, const WorkloadResult& b) {
  EXPECT_EQ(a.spec.id(), b.spec.id());
  EXPECT_EQ(a.spec.weights, b.spec.weights);
  EXPECT_EQ(a.n_parameters, b.n_parameters);
  ASSERT_EQ(a.metrics.size(), b.metrics.size());
  for (const auto& [k, m] : a.metrics) {
    const Metric& o = b.metrics.at(k);
    EXPECT_EQ(m.samples, o.samples) << k;  // exact: JSON round-trips doubles
    EXPECT_EQ(m.unit, o.unit);
    EXPECT_EQ(m.higher_is_better, o.higher_is_better);
  }
}

TEST(ResultJson, RoundTripsThroughAFile) {
  const BenchResult r = sample_result();
  const auto path = temp_path("r.json").string();
  save_result(r, path);
  const BenchResult back = load_result(path);
  EXPECT_EQ(back.created_at, r.created_at);
  EXPECT_EQ(back.environment, r.environment);
  ASSERT_EQ(back.workloads.size(), 2u);
  for (size_t i = 0; i < 2; ++i) expect_same(r.workloads[i], back.workloads[i]);
  EXPECT_EQ(back.workloads[0].spec.id(), "gpt2/generate/b1-p32-n16/reference/cpu");
  EXPECT_EQ(back.workloads[1].spec.id(), "bert/forward/b1-s64/reference/cpu");
}

TEST(ResultJson, PeerWorkloadsAndSkippedPeersRoundTrip) {
  BenchResult r = sample_result();
  WorkloadResult p = r.workloads[0];
  p.spec.peer = "pytorch";
  p.spec.level = "pytorch";
  p.peer_info = {{"engine", "pytorch"}, {"version", "2.11.0"}};
  r.workloads.push_back(p);
  r.skipped = {"gpt2/generate/b1-p32-n16/onnxruntime/cpu: forward workloads only"};
  const auto j = to_json(r);
  EXPECT_EQ(j["workloads"][0]["engine"], "kernelpytorch");
  EXPECT_EQ(j["workloads"][2]["engine"], "pytorch");
  EXPECT_EQ(j["workloads"][2]["peer"]["version"], "2.11.0");
  const BenchResult back = result_from_json(j, "r.json");
  ASSERT_EQ(back.workloads.size(), 3u);
  expect_same(p, back.workloads[2]);
  EXPECT_EQ(back.workloads[2].spec.peer, "pytorch");
  EXPECT_EQ(back.workloads[2].spec.id(), "gpt2/generate/b1-p32-n16/pytorch/cpu");
  EXPECT_TRUE(back.workloads[0].spec.peer.empty());
  EXPECT_EQ(back.skipped, r.skipped);
}

TEST(ResultJson, SummaryFieldsAreWritten) {
  const auto j = to_json(sample_result());
  const auto& m = j["workloads"][0]["metrics"]["latency_ms"];
  EXPECT_DOUBLE_EQ(m["median"].get<double>(), 11.0);
  EXPECT_DOUBLE_EQ(m["p90"].get<double>(), 11.8);
  EXPECT_EQ(m["better"], "lower");
  EXPECT_EQ(j["schema"], "kernelpytorch.benchmark/1");
}

std::string error_of(const nlohmann::json& j) {
  try {
    result_from_json(j, "bad.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ResultJson, MalformedGivesClearErrors) {
  auto good = to_json(sample_result());
  EXPECT_NE(error_of(nlohmann::json::array()).find("must be a JSON object"), std::string::npos);
  auto j = good;
  j["schema"] = "something/else";
  EXPECT_NE(error_of(j).find("schema must be \"kernelpytorch.benchmark/1\""), std::string::npos)
      << error_of(j);
  j = good;
  j.erase("workloads");
  EXPECT_NE(error_of(j).find("workloads is missing"), std::string::npos) << error_of(j);
  j = good;
  j["workloads"][0]["metrics"]["latency_ms"]["samples"] = nlohmann::json::array({1, "x"});
  EXPECT_NE(error_of(j).find("latency_ms.samples must hold numbers"), std::string::npos)
      << error_of(j);
  j = good;
  j["workloads"][0]["metrics"]["latency_ms"]["samples"] = nlohmann::json::array();
  EXPECT_NE(error_of(j).find("must be a non-empty array"), std::string::npos) << error_of(j);
  j = good;
  j["workloads"][0]["batch"] = "one";
  EXPECT_NE(error_of(j).find("workload.batch must be an integer"), std::string::npos)
      << error_of(j);
  j = good;
  j["workloads"][0]["kind"] = "train";
  EXPECT_NE(error_of(j).find("must be \"forward\" or \"generate\""), std::string::npos)
      << error_of(j);
}

TEST(ResultJson, NotJsonOrMissingFile) {
  const auto path = temp_path("garbage.json").string();
  std::ofstream(path) << "{ not json";
  try {
    load_result(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidFile);
    EXPECT_NE(std::string(e.what()).find("is not valid JSON"), std::string::npos);
  }
  EXPECT_THROW(load_result(temp_path("absent.json").string()), Error);
}

TEST(History, RoundTripAndFilters) {
  const auto path = temp_path("h.sqlite").string();
  fs::remove(path);
  auto h = History::open(path);
  const int64_t r1 = h.add(sample_result(1.0));
  const int64_t r2 = h.add(sample_result(2.0));
  EXPECT_LT(r1, r2);
  const auto all = h.entries();
  ASSERT_EQ(all.size(), 4u);
  const auto gpt = h.entries("gpt2/generate/b1-p32-n16/reference/cpu");
  ASSERT_EQ(gpt.size(), 2u);
  EXPECT_EQ(gpt[0].run_id, r1);
  EXPECT_EQ(gpt[1].git_commit, "0123456789abcdef");
  EXPECT_EQ(gpt[1].env_key, "abc");
  EXPECT_EQ(gpt[1].environment.value("env_key", ""), "abc");
  expect_same(gpt[1].result, sample_result(2.0).workloads[0]);
  EXPECT_TRUE(h.entries("", "other-env").empty());
  EXPECT_EQ(h.workloads().size(), 2u);
  const auto latest = h.latest("gpt2/generate/b1-p32-n16/reference/cpu", "abc", r2);
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->run_id, r1);
  // Reopening sees the same data.
  History again = History::open(path);
  EXPECT_EQ(again.entries().size(), 4u);
}

TEST(History, NotADatabaseIsAClearError) {
  const auto path = temp_path("not_sqlite.sqlite").string();
  std::ofstream(path)
      << "this is not a database, just text that is long enough to look like a header.........";
  try {
    History::open(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(Environment, FingerprintHasTheEssentials) {
  const auto env = environment_json();
  EXPECT_EQ(env["schema"], "kernelpytorch.environment/1");
  EXPECT_GT(env["hardware"]["cpu"]["logical_cores"].get<int>(), 0);
  EXPECT_GT(env["hardware"]["memory"]["total_bytes"].get<int64_t>(), 0);
  EXPECT_TRUE(env["hardware"]["gpus"].is_array());
  EXPECT_FALSE(env["build"]["git_commit"].get<std::string>().empty());
  EXPECT_EQ(env["env_key"].get<std::string>().size(), 16u);
  // The key ignores what changes between comparable runs (commit, free memory).
  auto other = env;
  other["build"]["git_commit"] = "deadbeef";
  other["hardware"]["memory"]["available_bytes"] = 1;
  EXPECT_EQ(env_key_of(other), env_key_of(env));
  other["threads"]["num_threads"] = 977;
  EXPECT_NE(env_key_of(other), env_key_of(env));
}

}  // namespace
}  // namespace kpt::bench
