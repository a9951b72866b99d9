#include "bench/compare.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include <fmt/format.h>

#include "bench/stats.h"
#include "kpt/status.h"

namespace kpt::bench {

namespace {
// Load time depends on the page cache more than on the engine; it is recorded, not judged.
// cpu_share describes the machine, not the engine: it gates the verdicts instead.
const std::set<std::string> kNotJudged = {"load_ms", "cpu_share"};

double cpu_share_of(const WorkloadResult& w) {
  auto it = w.metrics.find("cpu_share");
  return it == w.metrics.end() || it->second.samples.empty() ? 1.0 : it->second.median();
}
}  // namespace

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kUnchanged:
      return "unchanged";
    case Verdict::kImproved:
      return "improved";
    case Verdict::kRegressed:
      return "REGRESSED";
    case Verdict::kUnsure:
      return "unsure";
  }
  return "?";
}

bool Comparison::has_regression() const {
  for (const auto& c : changes) {
    if (c.verdict == Verdict::kRegressed) return true;
  }
  return false;
}

MetricChange compare_metric(const std::string& workload, const std::string& name,
                            const Metric& base, const Metric& candidate, const CompareOptions& o) {
  MetricChange c;
  c.workload = workload;
  c.metric = name;
  c.unit = base.unit;
  c.higher_is_better = base.higher_is_better;
  c.n_base = base.samples.size();
  c.n_new = candidate.samples.size();
  c.base_median = base.median();
  c.new_median = candidate.median();
  c.relative = c.base_median != 0 ? (c.new_median - c.base_median) / std::abs(c.base_median) : 0;
  const bool worse = base.higher_is_better ? c.relative < 0 : c.relative > 0;
  const bool beyond = std::abs(c.relative) > o.threshold;
  bool significant = false;
  if (c.n_base >= 2 && c.n_new >= 2) {
    c.p_value = mann_whitney_u(base.samples, candidate.samples).p_value;
    significant = c.p_value < o.alpha;
    c.note = fmt::format("Mann-Whitney p={:.2g}", c.p_value);
  } else {
    // A single value (peak memory): deterministic enough to judge on the threshold alone.
    c.p_value = std::numeric_limits<double>::quiet_NaN();
    significant = true;
    c.note = "single value, threshold only";
  }
  if (!beyond) {
    c.verdict = Verdict::kUnchanged;
  } else if (!significant) {
    c.verdict = Verdict::kUnsure;
    c.note += fmt::format(" >= {:.2g}: not significant (need more --repeat?)", o.alpha);
  } else {
    c.verdict = worse ? Verdict::kRegressed : Verdict::kImproved;
  }
  return c;
}

Comparison compare_results(const BenchResult& base, const BenchResult& candidate,
                           const CompareOptions& o) {
  Comparison out;
  out.environments_differ =
      base.environment.value("env_key", "") != candidate.environment.value("env_key", "");
  std::map<std::string, const WorkloadResult*> by_id;
  for (const auto& w : base.workloads) by_id[w.spec.id()] = &w;
  std::set<std::string> seen;
  for (const auto& w : candidate.workloads) {
    const std::string id = w.spec.id();
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      out.only_in_new.push_back(id);
      continue;
    }
    seen.insert(id);
    const double share = std::min(cpu_share_of(*it->second), cpu_share_of(w));
    for (const auto& [name, m] : w.metrics) {
      if (kNotJudged.count(name) != 0) continue;
      auto bm = it->second->metrics.find(name);
      if (bm == it->second->metrics.end()) continue;
      MetricChange ch = compare_metric(id, name, bm->second, m, o);
      if (share < o.min_cpu_share &&
          (ch.verdict == Verdict::kRegressed || ch.verdict == Verdict::kImproved) &&
          !std::isnan(ch.p_value)) {
        ch.verdict = Verdict::kUnsure;
        ch.note = fmt::format(
            "busy machine: the process got {:.0f}% of its threads' CPU time (< {:.0f}%)",
            100 * share, 100 * o.min_cpu_share);
      }
      out.changes.push_back(ch);
    }
  }
  for (const auto& [id, _] : by_id) {
    if (seen.count(id) == 0) out.only_in_base.push_back(id);
  }
  return out;
}

std::string format_comparison(const Comparison& c, const CompareOptions& o, bool only_moved) {
  std::string s;
  if (c.environments_differ) {
    s += "warning: the two results come from different environments (env_key differs); differences "
         "may be the "
         "machine's, not the code's\n";
  }
  s += fmt::format("{:<44} {:<16} {:>12} {:>12} {:>8} {:>9}  {}\n", "workload", "metric", "base",
                   "new", "change", "p-value", "verdict");
  for (const auto& ch : c.changes) {
    if (only_moved && ch.verdict == Verdict::kUnchanged) continue;
    const std::string p = std::isnan(ch.p_value) ? "-" : fmt::format("{:.2g}", ch.p_value);
    s += fmt::format("{:<44} {:<16} {:>12.4g} {:>12.4g} {:>+7.1f}% {:>9}  {}{}\n", ch.workload,
                     ch.metric, ch.base_median, ch.new_median, 100 * ch.relative, p,
                     verdict_name(ch.verdict),
                     ch.verdict == Verdict::kUnsure ? " (" + ch.note + ")" : "");
  }
  for (const auto& id : c.only_in_base) s += fmt::format("only in base: {}\n", id);
  for (const auto& id : c.only_in_new) s += fmt::format("only in new:  {}\n", id);
  int n_reg = 0, n_imp = 0, n_unsure = 0;
  for (const auto& ch : c.changes) {
    n_reg += ch.verdict == Verdict::kRegressed;
    n_imp += ch.verdict == Verdict::kImproved;
    n_unsure += ch.verdict == Verdict::kUnsure;
  }
  s += fmt::format(
      "{} metrics compared (threshold {:.1f}%, significance p < {:.2g}, two-sided Mann-Whitney U "
      "on the raw "
      "samples): {} regressed, {} improved, {} unsure, {} unchanged\n",
      c.changes.size(), 100 * o.threshold, o.alpha, n_reg, n_imp, n_unsure,
      static_cast<int>(c.changes.size()) - n_reg - n_imp - n_unsure);
  return s;
}

RatioCheck check_min_ratio(const WorkloadResult& base, const WorkloadResult& fast, double min_ratio,
                           double alpha) {
  RatioCheck r;
  r.workload = fast.spec.id();
  r.base_variant = base.spec.id();
  r.min_ratio = min_ratio;
  auto b = base.metrics.find("latency_ms"), f = fast.metrics.find("latency_ms");
  if (b == base.metrics.end() || f == fast.metrics.end() || b->second.samples.empty() ||
      f->second.samples.empty() || f->second.median() <= 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--min-ratio needs latency_ms samples in {} and {}", r.base_variant,
                            r.workload));
  }
  r.ratio = b->second.median() / f->second.median();
  if (r.ratio >= min_ratio) {
    r.verdict = Verdict::kUnchanged;
    r.note = "meets the floor";
    return r;
  }
  // H0: base and min_ratio x fast come from the same distribution. Rejected with base below:
  // the ratio is really under the floor, not just under it by noise.
  std::vector<double> scaled = f->second.samples;
  for (double& v : scaled) v *= min_ratio;
  if (b->second.samples.size() < 2 || scaled.size() < 2) {
    r.p_value = std::numeric_limits<double>::quiet_NaN();
    r.verdict = Verdict::kUnsure;
    r.note = "below the floor; too few samples for a test (use --repeat 6 or more)";
    return r;
  }
  r.p_value = mann_whitney_u(b->second.samples, scaled).p_value;
  if (r.p_value < alpha) {
    r.verdict = Verdict::kRegressed;
    r.note = fmt::format("below the floor, Mann-Whitney p={:.2g} < {:.2g}", r.p_value, alpha);
  } else {
    r.verdict = Verdict::kUnsure;
    r.note = fmt::format("below the floor but not significant (p={:.2g})", r.p_value);
  }
  return r;
}

std::string format_ratio_check(const RatioCheck& r) {
  return fmt::format("  min-ratio {:<44} {:.2f}x vs {} (floor {:.2f}x): {} - {}\n", r.workload,
                     r.ratio, r.base_variant, r.min_ratio,
                     r.verdict == Verdict::kUnchanged ? "ok" : verdict_name(r.verdict), r.note);
}

double parse_ratio(const std::string& text) {
  std::string t = text;
  if (!t.empty() && (t.back() == 'x' || t.back() == 'X')) t.pop_back();
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(t, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != t.size() || !(v > 0)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("ratio '{}' is not a positive number (e.g. 3 or 3x)", text));
  }
  return v;
}

double parse_threshold(const std::string& text) {
  std::string t = text;
  const bool percent = !t.empty() && t.back() == '%';
  if (percent) t.pop_back();
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(t, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != t.size() || !(v >= 0)) {
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format("threshold '{}' is not a percentage (e.g. 5%) or a fraction (e.g. 0.05)",
                    text));
  }
  return percent || v >= 1 ? v / 100 : v;
}

}  // namespace kpt::bench
