// History views: series and change points, sparklines, and the HTML report's self-containment.
#include <gtest/gtest.h>

#include "bench/report.h"

namespace kpt::bench {
namespace {

std::vector<HistoryEntry> step_history() {
  std::vector<HistoryEntry> out;
  for (int i = 0; i < 14; ++i) {
    HistoryEntry e;
    e.run_id = i + 1;
    e.created_at = "2026-11-29T12:00:00Z";
    e.git_commit = i < 8 ? "aaaaaaaaaaaa" : "bbbbbbbbbbbb";
    e.env_key = "env1";
    e.environment = {{"env_key", "env1"}, {"hardware", {{"cpu", {{"model", "Test CPU <x>"}}}}}};
    e.result.spec.name = "gpt2";
    e.result.spec.kind = "generate";
    const double base = i < 8 ? 100.0 : 125.0;  // a 25% slowdown enters with run 9
    e.result.metrics["latency_ms"] =
        Metric{"ms", false, {base + 0.1 * (i % 3), base + 1, base + 2}};
    out.push_back(e);
  }
  return out;
}

TEST(Series, ChangePointNamesTheRunAndCommit) {
  const auto series = build_series(step_history());
  ASSERT_EQ(series.size(), 1u);
  ASSERT_EQ(series[0].change_points.size(), 1u);
  const auto& cp = series[0].change_points[0];
  EXPECT_EQ(series[0].run_ids[cp.index], 9);
  EXPECT_EQ(series[0].commits[cp.index], "bbbbbbbbbbbb");
  EXPECT_NEAR(cp.relative_change(), 0.25, 0.01);
  const std::string text = format_history(series);
  EXPECT_NE(text.find("change point: +24."), std::string::npos) << text;
  EXPECT_NE(text.find("run #9"), std::string::npos) << text;
}

TEST(Sparkline, ScalesBetweenMinAndMax) {
  EXPECT_EQ(sparkline({1, 2, 3, 4, 5, 6, 7, 8}), "▁▂▃▄▅▆▇█");
  EXPECT_EQ(sparkline({5, 5}), "▄▄");
  EXPECT_EQ(sparkline({}), "");
}

TEST(HtmlReport, SelfContainedWithChartsAndEscaping) {
  ReportOptions o;
  o.source = "/tmp/h.sqlite";
  const std::string html = render_html_report(step_history(), o);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("change point at run #9"), std::string::npos);
  EXPECT_NE(html.find("Test CPU &lt;x&gt;"), std::string::npos);
  // Nothing fetched from the network, no scripts.
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(render_html_report({}, o).find("No benchmark runs"), std::string::npos);
}

}  // namespace
}  // namespace kpt::bench
