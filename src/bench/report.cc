#include "bench/report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

namespace kpt::bench {

namespace {

const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                               "#ff7f0e", "#8c564b", "#17becf"};

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

std::string short_commit(const std::string& c) {
  return c.size() > 10 ? c.substr(0, 10) : c;
}

// Compact number for axis labels and tables: 3 significant digits, SI suffix for large values.
std::string num(double v) {
  const double a = std::abs(v);
  if (a >= 1e9) return fmt::format("{:.3g}G", v / 1e9);
  if (a >= 1e6) return fmt::format("{:.3g}M", v / 1e6);
  if (a >= 1e5) return fmt::format("{:.3g}k", v / 1e3);
  if (a >= 100) return fmt::format("{:.0f}", v);
  return fmt::format("{:.3g}", v);
}

// The metric a workload is usually judged by, for the level/device comparison.
std::string primary_metric(const std::string& workload_id) {
  return workload_id.find("/generate/") != std::string::npos ? "tokens_s" : "latency_ms";
}

// workload id "name/kind/shape/level/device" -> ("name/kind/shape", "level/device").
std::pair<std::string, std::string> split_id(const std::string& id) {
  size_t slashes = 0, cut = std::string::npos;
  for (size_t i = 0; i < id.size(); ++i) {
    if (id[i] == '/' && ++slashes == 3) cut = i;
  }
  if (cut == std::string::npos) return {id, ""};
  return {id.substr(0, cut), id.substr(cut + 1)};
}

std::string line_chart(const Series& s) {
  constexpr double kW = 560, kH = 210, kL = 58, kR = 14, kT = 14, kB = 34;
  const size_t n = s.medians.size();
  double lo = *std::min_element(s.medians.begin(), s.medians.end());
  double hi = std::max(*std::max_element(s.medians.begin(), s.medians.end()),
                       *std::max_element(s.p90s.begin(), s.p90s.end()));
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) {
    lo -= 0.5 * std::max(1e-9, std::abs(lo) * 0.05);
    hi += 0.5 * std::max(1e-9, std::abs(hi) * 0.05);
  }
  // Show at least +-1% around the values, so a flat series looks flat, not like a saw.
  const double min_span = 0.02 * std::max(std::abs(hi), std::abs(lo));
  if (hi - lo < min_span) {
    const double mid = (hi + lo) / 2;
    lo = mid - min_span / 2;
    hi = mid + min_span / 2;
  }
  const double pad = 0.08 * (hi - lo);
  const bool non_negative = lo >= 0;
  lo -= pad;
  hi += pad;
  if (non_negative && lo < 0) lo = 0;  // times and rates are never negative
  auto x = [&](size_t i) {
    return kL + (n == 1 ? (kW - kL - kR) / 2
                        : (kW - kL - kR) * static_cast<double>(i) / static_cast<double>(n - 1));
  };
  auto y = [&](double v) { return kT + (kH - kT - kB) * (1 - (v - lo) / (hi - lo)); };
  std::string svg = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" role="img">)",
      kW, kH, kW, kH);
  svg += fmt::format(R"(<rect x="{}" y="{}" width="{}" height="{}" fill="#fafafa" stroke="#ddd"/>)",
                     kL, kT, kW - kL - kR, kH - kT - kB);
  for (int t = 0; t <= 4; ++t) {
    const double v = lo + (hi - lo) * t / 4.0;
    svg += fmt::format(
        R"(<line x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}" stroke="#eee"/><text x="{}" y="{:.1f}" font-size="10" text-anchor="end" fill="#555">{}</text>)",
        kL, kW - kR, y(v), y(v), kL - 4, y(v) + 3, esc(num(v)));
  }
  for (size_t i = 0; i < n; ++i) {
    const size_t step = (n + 11) / 12;  // at most ~12 labels; the last run is always labelled
    if (i + 1 == n || (i % step == 0 && n - 1 - i >= step)) {
      svg += fmt::format(
          R"(<text x="{:.1f}" y="{}" font-size="10" text-anchor="middle" fill="#555">#{}</text>)",
          x(i), kH - kB + 14, s.run_ids[i]);
    }
  }
  svg += fmt::format(
      R"(<text x="{}" y="{}" font-size="10" text-anchor="middle" fill="#555">run</text>)",
      (kW + kL) / 2, kH - 6);
  for (const auto& cp : s.change_points) {
    const double cx = (x(cp.index - 1) + x(cp.index)) / 2;
    svg += fmt::format(
        R"(<line x1="{0:.1f}" x2="{0:.1f}" y1="{1}" y2="{2}" stroke="#d62728" stroke-dasharray="4 3"/><text x="{3:.1f}" y="{4}" font-size="10" fill="#d62728">{5:+.1f}% (p={6:.1g})</text>)",
        cx, kT, kH - kB, cx + 3, kT + 11, 100 * cp.relative_change(), cp.p_value);
  }
  auto polyline = [&](const std::vector<double>& v, const char* color, const char* extra) {
    std::string pts;
    for (size_t i = 0; i < n; ++i) pts += fmt::format("{:.1f},{:.1f} ", x(i), y(v[i]));
    return fmt::format(R"(<polyline points="{}" fill="none" stroke="{}" stroke-width="1.6" {}/>)",
                       pts, color, extra);
  };
  svg += polyline(s.p90s, "#9ecae1", R"(stroke-dasharray="3 2")");
  svg += polyline(s.medians, "#1f77b4", "");
  for (size_t i = 0; i < n; ++i) {
    svg += fmt::format(
        R"(<circle cx="{:.1f}" cy="{:.1f}" r="2.8" fill="#1f77b4"><title>run {} · {} · commit {} · median {} {} · p90 {}</title></circle>)",
        x(i), y(s.medians[i]), s.run_ids[i], esc(s.times[i]), esc(short_commit(s.commits[i])),
        esc(num(s.medians[i])), esc(s.unit), esc(num(s.p90s[i])));
  }
  svg += "</svg>";
  return svg;
}

// Horizontal bars: one per level/device of one workload shape.
std::string bar_chart(const std::vector<std::pair<std::string, double>>& bars,
                      const std::string& unit) {
  constexpr double kW = 560, kRow = 24, kLabel = 170, kR = 100;
  const double h = kRow * static_cast<double>(bars.size()) + 10;
  double hi = 0;
  for (const auto& b : bars) hi = std::max(hi, b.second);
  if (hi <= 0) hi = 1;
  std::string svg = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" role="img">)",
      kW, h, kW, h);
  for (size_t i = 0; i < bars.size(); ++i) {
    const double y = 5 + kRow * static_cast<double>(i);
    const double w = (kW - kLabel - kR) * bars[i].second / hi;
    svg += fmt::format(
        R"(<text x="{}" y="{:.1f}" font-size="11" text-anchor="end" fill="#333">{}</text><rect x="{}" y="{:.1f}" width="{:.1f}" height="{}" fill="{}"/><text x="{:.1f}" y="{:.1f}" font-size="11" fill="#333">{} {}</text>)",
        kLabel - 6, y + 15, esc(bars[i].first), kLabel, y + 3, std::max(1.0, w), kRow - 8,
        kColors[i % std::size(kColors)], kLabel + w + 4, y + 15, esc(num(bars[i].second)),
        esc(unit));
  }
  svg += "</svg>";
  return svg;
}

}  // namespace

std::vector<Series> build_series(const std::vector<HistoryEntry>& entries,
                                 const ChangePointOptions& options) {
  std::map<std::tuple<std::string, std::string, std::string>, Series> by_key;
  for (const auto& e : entries) {
    const std::string wid = e.result.spec.id();
    for (const auto& [name, m] : e.result.metrics) {
      if (m.samples.empty()) continue;
      Series& s = by_key[{wid, name, e.env_key}];
      s.workload = wid;
      s.metric = name;
      s.env_key = e.env_key;
      s.unit = m.unit;
      s.higher_is_better = m.higher_is_better;
      s.medians.push_back(m.median());
      s.p90s.push_back(m.p90());
      s.run_ids.push_back(e.run_id);
      s.commits.push_back(e.git_commit);
      s.times.push_back(e.created_at);
    }
  }
  std::vector<Series> out;
  for (auto& [_, s] : by_key) {
    s.change_points = detect_change_points(s.medians, options);
    out.push_back(std::move(s));
  }
  return out;
}

std::string sparkline(const std::vector<double>& values) {
  static const char* const kBlocks[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  if (values.empty()) return "";
  const auto [lo_it, hi_it] = std::minmax_element(values.begin(), values.end());
  const double lo = *lo_it, hi = *hi_it;
  std::string s;
  for (double v : values) {
    // A spread under 1% of the values is drawn flat: min-max scaling would magnify rounding.
    const bool flat = hi - lo <= 0.01 * std::max(std::abs(hi), std::abs(lo));
    const int level = flat ? 3 : static_cast<int>(std::lround((v - lo) / (hi - lo) * 7));
    s += kBlocks[std::clamp(level, 0, 7)];
  }
  return s;
}

std::string format_history(const std::vector<Series>& series, size_t last_n) {
  std::string out;
  std::string current;
  for (const auto& s : series) {
    if (s.metric == "load_ms") continue;
    if (s.workload + s.env_key != current) {
      current = s.workload + s.env_key;
      out += fmt::format("\n{}  (env {}, {} runs)\n", s.workload, s.env_key, s.medians.size());
    }
    const size_t first = s.medians.size() > last_n ? s.medians.size() - last_n : 0;
    std::vector<double> tail(s.medians.begin() + static_cast<std::ptrdiff_t>(first),
                             s.medians.end());
    std::string values;
    for (double v : tail) values += fmt::format(" {:>8}", num(v));
    out += fmt::format("  {:<16} {:<9} {} |{}\n", s.metric, s.unit, sparkline(s.medians), values);
    for (const auto& cp : s.change_points) {
      out += fmt::format(
          "    change point: {:+.1f}% at run #{} (commit {}, {}), median {} -> {}, p={:.2g}\n",
          100 * cp.relative_change(), s.run_ids[cp.index], short_commit(s.commits[cp.index]),
          s.times[cp.index], num(cp.before), num(cp.after), cp.p_value);
    }
  }
  if (out.empty()) out = "no benchmark runs in the history yet\n";
  return out;
}

std::string render_html_report(const std::vector<HistoryEntry>& entries, const ReportOptions& o) {
  const auto series = build_series(entries);
  std::string h = R"(<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>)" +
                  esc(o.title) + R"(</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;max-width:1240px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:14px;margin:14px 0 4px;font-family:ui-monospace,monospace}
.meta{color:#666;font-size:13px} .grid{display:flex;flex-wrap:wrap;gap:10px 22px}
.card{border:1px solid #e5e5e5;border-radius:6px;padding:8px 10px;background:#fff}
.card h4{margin:0 0 4px;font-size:13px} .cp{color:#d62728;font-size:12px}
table{border-collapse:collapse;font-size:12px} td,th{border:1px solid #e2e2e2;padding:3px 7px;text-align:right}
th{background:#f4f4f4} td.l,th.l{text-align:left;font-family:ui-monospace,monospace}
.legend{font-size:12px;color:#555}
</style></head><body>
)";
  h += "<h1>" + esc(o.title) + "</h1>\n";
  std::set<int64_t> runs;
  for (const auto& e : entries) runs.insert(e.run_id);
  std::set<std::string> ids;
  for (const auto& e : entries) ids.insert(e.result.spec.id());
  h += fmt::format(R"(<p class="meta">{} runs · {} workloads · {} series · source: {}</p>)",
                   runs.size(), ids.size(), series.size(), esc(o.source));
  h += "\n";
  if (entries.empty()) {
    h += "<p>No benchmark runs in the history yet: run <code>kernelpytorch benchmark ...</code> "
         "first.</p></body></html>\n";
    return h;
  }

  // Level / device comparison: the newest result of each workload id, grouped by shape.
  std::map<std::string, std::map<std::string, const HistoryEntry*>>
      latest;  // shape -> level/device -> entry
  for (const auto& e : entries) {
    auto [shape, variant] = split_id(e.result.spec.id());
    latest[shape][variant] = &e;
  }
  h += "<h2>Levels and devices (newest run of each)</h2>\n<div class=\"grid\">\n";
  for (const auto& [shape, variants] : latest) {
    const std::string metric = primary_metric(shape + "/");
    std::vector<std::pair<std::string, double>> bars;
    std::string unit;
    for (const auto& [variant, e] : variants) {
      auto it = e->result.metrics.find(metric);
      if (it == e->result.metrics.end()) continue;
      bars.emplace_back(variant, it->second.median());
      unit = it->second.unit;
    }
    if (bars.empty()) continue;
    h += fmt::format("<div class=\"card\"><h4>{} — {} (median, {} is better)</h4>{}</div>\n",
                     esc(shape), esc(metric), metric == "tokens_s" ? "higher" : "lower",
                     bar_chart(bars, unit));
  }
  h += "</div>\n";

  // Newest results as a table.
  h += "<h2>Newest results</h2>\n<table><tr><th "
       "class=\"l\">workload</th><th>weights</th><th>run</th><th>commit</th>"
       "<th>latency median ms</th><th>p90 ms</th><th>ttft ms</th><th>itl "
       "ms</th><th>tokens/s</th><th>seq/s</th><th>peak RSS MB</th></tr>\n";
  for (const auto& [shape, variants] : latest) {
    for (const auto& [variant, e] : variants) {
      const auto& m = e->result.metrics;
      auto med = [&](const char* k) {
        auto it = m.find(k);
        return it == m.end() ? std::string("–") : num(it->second.median());
      };
      auto p90 = [&](const char* k) {
        auto it = m.find(k);
        return it == m.end() ? std::string("–") : num(it->second.p90());
      };
      auto rss = m.find("peak_rss_bytes");
      h += fmt::format(
          "<tr><td "
          "class=\"l\">{}</td><td>{}</td><td>#{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</"
          "td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
          esc(e->result.spec.id()), esc(e->result.spec.weights), e->run_id,
          esc(short_commit(e->git_commit)), med("latency_ms"), p90("latency_ms"), med("ttft_ms"),
          med("itl_ms"), med("tokens_s"), med("throughput_seq_s"),
          rss == m.end() ? "–" : num(rss->second.median() / 1e6));
    }
  }
  h += "</table>\n";

  // Trends, one card per metric, grouped by workload and environment.
  h += "<h2>Trends</h2>\n<p class=\"legend\">Solid: median of each run; dashed: p90. Red dashed "
       "lines: change points "
       "(binary segmentation, Mann-Whitney p &lt; 0.01 and a shift of at least 5%). Hover a point "
       "for its run.</p>\n";
  std::string current;
  for (const auto& s : series) {
    if (s.metric == "load_ms") continue;
    if (s.workload + "|" + s.env_key != current) {
      if (!current.empty()) h += "</div>\n";
      current = s.workload + "|" + s.env_key;
      h += fmt::format("<h3>{} <span class=\"meta\">env {}</span></h3>\n<div class=\"grid\">\n",
                       esc(s.workload), esc(s.env_key));
    }
    h += fmt::format("<div class=\"card\"><h4>{} ({}, {} is better)</h4>{}", esc(s.metric),
                     esc(s.unit), s.higher_is_better ? "higher" : "lower", line_chart(s));
    for (const auto& cp : s.change_points) {
      h += fmt::format(
          "<div class=\"cp\">change point at run #{} (commit {}): {} → {} {}, {:+.1f}%, "
          "p={:.2g}</div>",
          s.run_ids[cp.index], esc(short_commit(s.commits[cp.index])), esc(num(cp.before)),
          esc(num(cp.after)), esc(s.unit), 100 * cp.relative_change(), cp.p_value);
    }
    h += "</div>\n";
  }
  if (!current.empty()) h += "</div>\n";

  // Environments.
  h += "<h2>Environments</h2>\n<table><tr><th class=\"l\">env key</th><th "
       "class=\"l\">CPU</th><th>threads</th><th class=\"l\">GPUs</th><th "
       "class=\"l\">build</th></tr>\n";
  std::set<std::string> seen;
  for (const auto& e : entries) {
    if (!seen.insert(e.env_key).second) continue;
    const auto& env = e.environment;
    const auto hwj = env.value("hardware", nlohmann::json::object());
    const auto cpu = hwj.value("cpu", nlohmann::json::object());
    std::string gpus;
    for (const auto& g : hwj.value("gpus", nlohmann::json::array())) {
      gpus += fmt::format("{}{} (sm {})", gpus.empty() ? "" : ", ", g.value("name", "?"),
                          g.value("compute_capability", "?"));
    }
    const auto b = env.value("build", nlohmann::json::object());
    std::string flags;
    for (const auto& f : cpu.value("flags", nlohmann::json::array()))
      flags += " " + f.get<std::string>();
    h += fmt::format(
        "<tr><td class=\"l\">{}</td><td class=\"l\">{} ({} cores;{})</td><td>{}</td><td "
        "class=\"l\">{}</td>"
        "<td class=\"l\">{} {} {}, CUDA {}</td></tr>\n",
        esc(e.env_key), esc(cpu.value("model", "?")), cpu.value("usable_cores", 0), esc(flags),
        env.value("threads", nlohmann::json::object()).value("num_threads", 0),
        esc(gpus.empty() ? "none" : gpus), esc(b.value("version", "?")),
        esc(b.value("compiler", "?")), esc(b.value("build_type", "?")),
        b.value("cuda", false) ? "on" : "off");
  }
  h += "</table>\n</body></html>\n";
  return h;
}

}  // namespace kpt::bench
