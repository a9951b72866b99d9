#include "bench/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kpt/status.h"

namespace kpt::bench {

double mean(const std::vector<double>& x) {
  if (x.empty()) return 0;
  return std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(x.size());
}

double stddev(const std::vector<double>& x) {
  if (x.size() < 2) return 0;
  const double m = mean(x);
  double ss = 0;
  for (double v : x) ss += (v - m) * (v - m);
  return std::sqrt(ss / static_cast<double>(x.size() - 1));
}

double percentile(std::vector<double> x, double q) {
  if (x.empty()) throw Error(ErrorCode::kInvalidArgument, "percentile of an empty sample");
  if (!(q >= 0 && q <= 100))
    throw Error(ErrorCode::kInvalidArgument, "percentile must be in [0, 100]");
  std::sort(x.begin(), x.end());
  const double pos = q / 100.0 * static_cast<double>(x.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, x.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return x[lo] + (x[hi] - x[lo]) * frac;
}

double median(const std::vector<double>& x) {
  return percentile(x, 50);
}

double normal_sf(double z) {
  return 0.5 * std::erfc(z / std::sqrt(2.0));
}

MannWhitney mann_whitney_u(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.empty() || y.empty())
    throw Error(ErrorCode::kInvalidArgument, "Mann-Whitney U needs two non-empty samples");
  const double n1 = static_cast<double>(x.size()), n2 = static_cast<double>(y.size());
  // Rank the pooled sample, ties getting their average rank; collect tie-group sizes.
  std::vector<std::pair<double, int>> pooled;  // (value, 0 for x / 1 for y)
  pooled.reserve(x.size() + y.size());
  for (double v : x) pooled.emplace_back(v, 0);
  for (double v : y) pooled.emplace_back(v, 1);
  std::sort(pooled.begin(), pooled.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  double rank_sum_x = 0, tie_term = 0;
  for (size_t i = 0; i < pooled.size();) {
    size_t j = i;
    while (j < pooled.size() && pooled[j].first == pooled[i].first) ++j;
    const double t = static_cast<double>(j - i);
    const double avg_rank =
        (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;  // 1-based ranks i+1..j
    for (size_t k = i; k < j; ++k) {
      if (pooled[k].second == 0) rank_sum_x += avg_rank;
    }
    tie_term += t * t * t - t;
    i = j;
  }
  MannWhitney r;
  r.u1 = rank_sum_x - n1 * (n1 + 1) / 2;
  const double u2 = n1 * n2 - r.u1;
  const double n = n1 + n2;
  const double mu = n1 * n2 / 2;
  const double var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)));
  if (var <= 0) {  // every value equal: no evidence of a difference
    r.z = 0;
    r.p_value = 1;
    return r;
  }
  // Two-sided: the larger U, continuity-corrected by 0.5 toward the mean.
  const double u = std::max(r.u1, u2);
  r.z = (u - mu - 0.5) / std::sqrt(var);
  r.p_value = std::min(1.0, 2.0 * normal_sf(r.z));
  if (r.u1 < mu) r.z = -r.z;  // sign: negative when x tends to be smaller than y
  return r;
}

double hodges_lehmann_shift(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.empty() || y.empty())
    throw Error(ErrorCode::kInvalidArgument, "Hodges-Lehmann needs two non-empty samples");
  std::vector<double> diffs;
  diffs.reserve(x.size() * y.size());
  for (double a : x) {
    for (double b : y) diffs.push_back(b - a);
  }
  return median(diffs);
}

namespace {
void segment(const std::vector<double>& s, size_t begin, size_t end, const ChangePointOptions& o,
             std::vector<ChangePoint>& out) {
  if (end - begin < 2 * o.min_segment) return;
  // Locate the split by least squares (the split that leaves the smallest within-segment sum of
  // squares: exact for a step in the mean, and not biased toward balanced halves as picking the
  // smallest p-value is); then test that split with Mann-Whitney, which is robust to outliers.
  auto sse = [&](size_t b, size_t e) {
    double m = 0;
    for (size_t i = b; i < e; ++i) m += s[i];
    m /= static_cast<double>(e - b);
    double acc = 0;
    for (size_t i = b; i < e; ++i) acc += (s[i] - m) * (s[i] - m);
    return acc;
  };
  size_t best_k = 0;
  double best_cost = 0;
  for (size_t k = begin + o.min_segment; k + o.min_segment <= end; ++k) {
    const double cost = sse(begin, k) + sse(k, end);
    if (best_k == 0 || cost < best_cost) {
      best_k = k;
      best_cost = cost;
    }
  }
  if (best_k == 0) return;
  const auto mid = s.begin() + static_cast<std::ptrdiff_t>(best_k);
  const std::vector<double> left(s.begin() + static_cast<std::ptrdiff_t>(begin), mid);
  const std::vector<double> right(mid, s.begin() + static_cast<std::ptrdiff_t>(end));
  const ChangePoint c{best_k, median(left), median(right), mann_whitney_u(left, right).p_value};
  if (c.p_value >= o.alpha || std::abs(c.relative_change()) < o.min_relative) return;
  segment(s, begin, best_k, o, out);
  out.push_back(c);
  segment(s, best_k, end, o, out);
}
}  // namespace

std::vector<ChangePoint> detect_change_points(const std::vector<double>& series,
                                              const ChangePointOptions& options) {
  std::vector<ChangePoint> out;
  segment(series, 0, series.size(), options, out);
  return out;
}

}  // namespace kpt::bench
