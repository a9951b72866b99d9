// Statistics against values computed by numpy 2 / scipy 1.17.1 (scipy.stats.mannwhitneyu with
// alternative="two-sided", method="asymptotic", use_continuity=True; numpy.percentile "linear").
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "bench/stats.h"
#include "kpt/status.h"

namespace kpt::bench {
namespace {

TEST(Percentile, MatchesNumpyLinear) {
  const std::vector<double> x = {3, 1, 4, 1, 5, 9, 2, 6};
  EXPECT_DOUBLE_EQ(percentile(x, 0), 1.0);
  EXPECT_DOUBLE_EQ(percentile(x, 10), 1.0);
  EXPECT_DOUBLE_EQ(percentile(x, 50), 3.5);
  EXPECT_NEAR(percentile(x, 90), 6.8999999999999995, 1e-12);
  EXPECT_DOUBLE_EQ(percentile(x, 100), 9.0);
  EXPECT_NEAR(percentile(x, 33.3), 2.3309999999999995, 1e-12);
  EXPECT_DOUBLE_EQ(median({7}), 7.0);
}

TEST(Percentile, RejectsEmptyAndOutOfRange) {
  EXPECT_THROW(percentile({}, 50), Error);
  EXPECT_THROW(percentile({1, 2}, 101), Error);
  EXPECT_THROW(percentile({1, 2}, -1), Error);
}

struct MwCase {
  const char* name;
  std::vector<double> x, y;
  double u1, p;
};

TEST(MannWhitney, MatchesScipyAsymptotic) {
  const std::vector<MwCase> cases = {
      {"no_ties",
       {1.1, 2.2, 3.3, 4.4, 5.5, 6.6},
       {7.7, 8.8, 9.9, 10.1, 11.2, 12.3, 13.4},
       0.0,
       0.0034052358212947604},
      {"ties", {1, 2, 2, 3, 3, 3, 4, 5}, {2, 3, 4, 4, 5, 5, 6, 7, 7}, 13.5, 0.03175895714806371},
      {"overlap",
       {10.2, 9.8, 10.5, 10.1, 9.9, 10.3, 10.0, 10.4},
       {10.6, 10.9, 10.1, 11.2, 10.8, 10.7, 11.0, 10.5},
       5.0,
       0.005317247337299629},
      {"identical", {3, 3, 3}, {3, 3, 3, 3}, 6.0, 1.0},
  };
  for (const auto& c : cases) {
    const MannWhitney r = mann_whitney_u(c.x, c.y);
    EXPECT_DOUBLE_EQ(r.u1, c.u1) << c.name;
    EXPECT_NEAR(r.p_value, c.p, 1e-12) << c.name;
    // Symmetric: swapping the samples gives the complementary U and the same p-value.
    const MannWhitney s = mann_whitney_u(c.y, c.x);
    EXPECT_DOUBLE_EQ(s.u1, static_cast<double>(c.x.size() * c.y.size()) - c.u1) << c.name;
    EXPECT_NEAR(s.p_value, c.p, 1e-12) << c.name;
  }
}

TEST(MannWhitney, RejectsEmpty) {
  EXPECT_THROW(mann_whitney_u({}, {1.0}), Error);
}

TEST(HodgesLehmann, ShiftOfShiftedSample) {
  const std::vector<double> x = {1, 2, 3, 4, 5};
  std::vector<double> y;
  for (double v : x) y.push_back(v + 10);
  EXPECT_DOUBLE_EQ(hodges_lehmann_shift(x, y), 10.0);
}

TEST(ChangePoint, FindsOneStepAndWhere) {
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0, 0.5);
  std::vector<double> s;
  for (int i = 0; i < 12; ++i) s.push_back(100 + noise(rng));
  for (int i = 0; i < 10; ++i) s.push_back(120 + noise(rng));  // +20% from index 12
  const auto cps = detect_change_points(s);
  ASSERT_EQ(cps.size(), 1u);
  EXPECT_EQ(cps[0].index, 12u);
  EXPECT_NEAR(cps[0].relative_change(), 0.20, 0.02);
  EXPECT_LT(cps[0].p_value, 0.01);
}

TEST(ChangePoint, FindsTwoSteps) {
  std::vector<double> s;
  for (int i = 0; i < 8; ++i) s.push_back(10 + 0.01 * (i % 3));
  for (int i = 0; i < 8; ++i) s.push_back(13 + 0.01 * (i % 3));
  for (int i = 0; i < 8; ++i) s.push_back(10.5 + 0.01 * (i % 3));
  const auto cps = detect_change_points(s);
  ASSERT_EQ(cps.size(), 2u);
  EXPECT_EQ(cps[0].index, 8u);
  EXPECT_EQ(cps[1].index, 16u);
}

TEST(ChangePoint, QuietOnNoiseAndShortSeries) {
  std::mt19937 rng(11);
  std::normal_distribution<double> noise(0, 2.0);  // 2% noise around 100
  std::vector<double> s;
  for (int i = 0; i < 30; ++i) s.push_back(100 + noise(rng));
  EXPECT_TRUE(detect_change_points(s).empty());
  EXPECT_TRUE(detect_change_points({1, 2, 100, 100}).empty());  // too short to prove anything
  // A significant but tiny shift (1%) stays below the 5% floor.
  std::vector<double> tiny;
  for (int i = 0; i < 10; ++i) tiny.push_back(100 + 0.001 * i);
  for (int i = 0; i < 10; ++i) tiny.push_back(101 + 0.001 * i);
  EXPECT_TRUE(detect_change_points(tiny).empty());
}

}  // namespace
}  // namespace kpt::bench
