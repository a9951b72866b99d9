// Regression detection on synthetic samples: noise passes, a real slowdown fails, and an
// unproven large move is "unsure", not a regression.
#include <random>

#include <gtest/gtest.h>

#include "bench/compare.h"
#include "kpt/status.h"

namespace kpt::bench {
namespace {

// Latency-like samples: a median of `center` ms with multiplicative noise and rare outliers,
// as a shared 2-core machine produces.
std::vector<double> noisy(double center, int n, uint32_t seed, double rel_noise = 0.03) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(0, rel_noise);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<double> out;
  for (int i = 0; i < n; ++i) {
    double v = center * (1 + g(rng));
    if (u(rng) < 0.1) v *= 1.5;  // a descheduled run
    out.push_back(v);
  }
  return out;
}

BenchResult one_workload(const std::vector<double>& latency, const std::vector<double>& tokens_s) {
  BenchResult r;
  r.environment = {{"env_key", "test"}};
  WorkloadResult w;
  w.spec.name = "m";
  w.spec.kind = "generate";
  w.metrics["latency_ms"] = Metric{"ms", false, latency};
  w.metrics["tokens_s"] = Metric{"tokens/s", true, tokens_s};
  r.workloads.push_back(w);
  return r;
}

TEST(Compare, NoiseIsNotARegression) {
  // 20 seeds of two runs of the same code: none may be flagged.
  for (uint32_t seed = 0; seed < 20; ++seed) {
    const auto base = one_workload(noisy(100, 20, seed), noisy(50, 20, seed + 100));
    const auto next = one_workload(noisy(100, 20, seed + 1000), noisy(50, 20, seed + 2000));
    const Comparison c = compare_results(base, next);
    EXPECT_FALSE(c.has_regression()) << "seed " << seed << "\n" << format_comparison(c, {}, false);
  }
}

TEST(Compare, TwentyPercentSlowdownIsARegression) {
  const auto base = one_workload(noisy(100, 20, 1), noisy(50, 20, 2));
  const auto next = one_workload(noisy(120, 20, 3), noisy(40, 20, 4));  // slower and fewer tokens/s
  const Comparison c = compare_results(base, next);
  ASSERT_TRUE(c.has_regression()) << format_comparison(c, {}, false);
  for (const auto& ch : c.changes) {
    EXPECT_EQ(ch.verdict, Verdict::kRegressed) << ch.metric;
    EXPECT_LT(ch.p_value, 0.01);
  }
}

TEST(Compare, TenPercentSlowdownIsCaughtWithEnoughSamples) {
  const auto base = one_workload(noisy(100, 30, 5, 0.02), noisy(50, 30, 6, 0.02));
  const auto next = one_workload(noisy(110, 30, 7, 0.02), noisy(50, 30, 8, 0.02));
  const Comparison c = compare_results(base, next);
  EXPECT_TRUE(c.has_regression()) << format_comparison(c, {}, false);
}

TEST(Compare, BusyMachineMakesMovesUnsure) {
  auto base = one_workload(noisy(100, 20, 1), noisy(50, 20, 2));
  auto next = one_workload(noisy(120, 20, 3), noisy(40, 20, 4));
  base.workloads[0].metrics["cpu_share"] = Metric{"fraction", true, {0.97, 0.98, 0.96}};
  next.workloads[0].metrics["cpu_share"] = Metric{"fraction", true, {0.41, 0.52, 0.47}};  // starved
  const Comparison c = compare_results(base, next);
  EXPECT_FALSE(c.has_regression()) << format_comparison(c, {}, false);
  for (const auto& ch : c.changes) {
    EXPECT_EQ(ch.verdict, Verdict::kUnsure);
    EXPECT_NE(ch.note.find("busy machine"), std::string::npos);
  }
  CompareOptions no_gate;
  no_gate.min_cpu_share = 0;
  EXPECT_TRUE(compare_results(base, next, no_gate).has_regression());
}

TEST(Compare, SpeedupIsAnImprovement) {
  const auto base = one_workload(noisy(100, 20, 9), noisy(50, 20, 10));
  const auto next = one_workload(noisy(70, 20, 11), noisy(70, 20, 12));
  const Comparison c = compare_results(base, next);
  EXPECT_FALSE(c.has_regression());
  for (const auto& ch : c.changes) EXPECT_EQ(ch.verdict, Verdict::kImproved) << ch.metric;
}

TEST(Compare, LargeButUnprovenMoveIsUnsure) {
  // Three samples each cannot reach p < 0.01, however far apart they are.
  const auto base = one_workload({100, 101, 99}, {50, 51, 49});
  const auto next = one_workload({130, 131, 129}, {40, 41, 39});
  const Comparison c = compare_results(base, next);
  EXPECT_FALSE(c.has_regression());
  for (const auto& ch : c.changes) EXPECT_EQ(ch.verdict, Verdict::kUnsure);
}

TEST(Compare, SignificantButBelowThresholdIsUnchanged) {
  std::vector<double> a, b;
  for (int i = 0; i < 30; ++i) {
    a.push_back(100 + 0.01 * i);
    b.push_back(102 + 0.01 * i);  // +2%, p tiny, below 5%
  }
  const Comparison c = compare_results(one_workload(a, {1, 1}), one_workload(b, {1, 1}));
  EXPECT_FALSE(c.has_regression());
  EXPECT_EQ(c.changes[0].verdict, Verdict::kUnchanged);
  CompareOptions strict;
  strict.threshold = 0.01;
  EXPECT_TRUE(
      compare_results(one_workload(a, {1, 1}), one_workload(b, {1, 1}), strict).has_regression());
}

TEST(Compare, SingleValueMetricUsesThresholdOnly) {
  const MetricChange up = compare_metric("w", "peak_rss_bytes", Metric{"bytes", false, {1000}},
                                         Metric{"bytes", false, {1200}}, {});
  EXPECT_EQ(up.verdict, Verdict::kRegressed);
  const MetricChange same = compare_metric("w", "peak_rss_bytes", Metric{"bytes", false, {1000}},
                                           Metric{"bytes", false, {1010}}, {});
  EXPECT_EQ(same.verdict, Verdict::kUnchanged);
}

TEST(Compare, ReportsWorkloadsOnOneSide) {
  auto base = one_workload({1, 2, 3}, {1, 2, 3});
  auto next = one_workload({1, 2, 3}, {1, 2, 3});
  next.workloads[0].spec.batch = 8;
  const Comparison c = compare_results(base, next);
  EXPECT_TRUE(c.changes.empty());
  ASSERT_EQ(c.only_in_base.size(), 1u);
  ASSERT_EQ(c.only_in_new.size(), 1u);
}

TEST(Threshold, Parses) {
  EXPECT_DOUBLE_EQ(parse_threshold("5%"), 0.05);
  EXPECT_DOUBLE_EQ(parse_threshold("0.05"), 0.05);
  EXPECT_DOUBLE_EQ(parse_threshold("10"), 0.10);
  EXPECT_DOUBLE_EQ(parse_threshold("2.5%"), 0.025);
  EXPECT_THROW(parse_threshold("five"), Error);
  EXPECT_THROW(parse_threshold("5%%"), Error);
  EXPECT_THROW(parse_threshold("-1"), Error);
}

WorkloadResult level_result(const std::string& level, const std::vector<double>& latency) {
  WorkloadResult w;
  w.spec.name = "m";
  w.spec.kind = "forward";
  w.spec.level = level;
  w.metrics["latency_ms"] = Metric{"ms", false, latency};
  return w;
}

// Same-run ratio floors (benchmark --min-ratio): reference ~7x slower than conservative, as
// measured for the gate's workloads; noise on both sides.
TEST(RatioFloor, WellAboveTheFloorPasses) {
  const auto ref = level_result("reference", noisy(140, 12, 1));
  const auto fast = level_result("conservative", noisy(20, 12, 2));
  const auto c = check_min_ratio(ref, fast, 3.0);
  EXPECT_EQ(c.verdict, Verdict::kUnchanged);
  EXPECT_NEAR(c.ratio, 7.0, 0.7);
}

TEST(RatioFloor, ClearlyBelowTheFloorFails) {
  // The optimized level lost its speed-up: 2x instead of 7x, floor 3x, 12 samples each.
  const auto ref = level_result("reference", noisy(140, 12, 3));
  const auto fast = level_result("conservative", noisy(70, 12, 4));
  const auto c = check_min_ratio(ref, fast, 3.0);
  EXPECT_EQ(c.verdict, Verdict::kRegressed) << c.note;
  EXPECT_LT(c.p_value, 0.01);
  EXPECT_NE(format_ratio_check(c).find("REGRESSED"), std::string::npos);
}

TEST(RatioFloor, SlightlyBelowTheFloorIsNoiseNotAFailure) {
  // Median ratio a little under the floor with overlapping samples: unsure, never a failure.
  const auto ref = level_result("reference", noisy(100, 12, 5, 0.10));
  const auto fast = level_result("conservative", noisy(34, 12, 6, 0.10));
  const auto c = check_min_ratio(ref, fast, 3.0);
  EXPECT_NE(c.verdict, Verdict::kRegressed) << c.note << " ratio " << c.ratio;
}

TEST(RatioFloor, TooFewSamplesIsUnsureAndMissingMetricIsAnError) {
  const auto c =
      check_min_ratio(level_result("reference", {100}), level_result("conservative", {90}), 3.0);
  EXPECT_EQ(c.verdict, Verdict::kUnsure);
  WorkloadResult empty = level_result("conservative", {});
  empty.metrics.clear();
  EXPECT_THROW(check_min_ratio(level_result("reference", {1, 2}), empty, 2.0), Error);
}

TEST(RatioFloor, ParsesRatios) {
  EXPECT_DOUBLE_EQ(parse_ratio("3"), 3.0);
  EXPECT_DOUBLE_EQ(parse_ratio("3x"), 3.0);
  EXPECT_DOUBLE_EQ(parse_ratio("1.5X"), 1.5);
  EXPECT_THROW(parse_ratio("0"), Error);
  EXPECT_THROW(parse_ratio("fast"), Error);
  EXPECT_THROW(parse_ratio("3xx"), Error);
}

}  // namespace
}  // namespace kpt::bench
