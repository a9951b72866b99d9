// Statistics for benchmark samples: order statistics, the Mann-Whitney U test (normal
// approximation with tie and continuity correction, as scipy.stats.mannwhitneyu(method=
// "asymptotic") computes it), a Hodges-Lehmann shift estimate, and change-point detection.
#pragma once

#include <cstddef>
#include <vector>

namespace kpt::bench {

double mean(const std::vector<double>& x);
double stddev(const std::vector<double>& x);  // sample standard deviation (n - 1); 0 for n < 2
// q in [0, 100], linear interpolation between order statistics (numpy's default "linear").
// Throws kInvalidArgument on an empty sample.
double percentile(std::vector<double> x, double q);
double median(const std::vector<double>& x);

struct MannWhitney {
  double u1 = 0;       // U statistic of the first sample (scipy's `statistic`)
  double z = 0;        // standardized, continuity-corrected, tie-corrected
  double p_value = 1;  // two-sided
};
// Two-sided test that x and y come from the same distribution. Needs both samples non-empty.
MannWhitney mann_whitney_u(const std::vector<double>& x, const std::vector<double>& y);

// Median of all pairwise differences y_j - x_i: a robust estimate of how far y sits from x.
double hodges_lehmann_shift(const std::vector<double>& x, const std::vector<double>& y);

// Standard normal upper tail P(Z > z).
double normal_sf(double z);

struct ChangePoint {
  size_t index = 0;   // first element of the new segment
  double before = 0;  // median of the segment before
  double after = 0;   // median of the segment after
  double p_value = 1;
  double relative_change() const { return before != 0 ? (after - before) / before : 0; }
};
struct ChangePointOptions {
  double alpha = 0.01;         // Mann-Whitney p-value a split must beat
  double min_relative = 0.05;  // and a median shift at least this large (noise floor)
  size_t min_segment = 3;      // points on each side of a split
};
// Binary segmentation: split the series where a step in the mean fits best (least squares), keep
// the split when the two sides differ significantly (Mann-Whitney) and by enough, recurse into
// both halves. O(n^2) per level: histories are hundreds of runs, not millions.
// Returns the change points in order.
std::vector<ChangePoint> detect_change_points(const std::vector<double>& series,
                                              const ChangePointOptions& options = {});

}  // namespace kpt::bench
