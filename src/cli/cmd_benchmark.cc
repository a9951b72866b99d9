// kernelpytorch benchmark: run a model or a suite, keep history, compare, report.
// Exit codes: 0 ok, 1 error, 2 usage, 3 a regression was found (compare, --baseline).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/compare.h"
#include "bench/environment.h"
#include "bench/history.h"
#include "bench/peer.h"
#include "bench/report.h"
#include "bench/runner.h"
#include "cli/commands.h"
#include "kpt/engine.h"
#include "kpt/status.h"

namespace kpt::cli {

namespace {

constexpr int kExitRegression = 3;

struct RunArgs {
  std::string model_dir, suite, kind = "auto", output, history, threshold = "5%";
  std::string level = "reference", device = "cpu";
  std::string min_ratio;  // "3x": every variant must be this much faster than the first
  std::string peers;      // "pytorch,onnxruntime": other engines on the same workload
  int64_t batch = 1, seq = 128, prompt_len = 32, new_tokens = 32;
  int repeat = 0, warmup = -1, threads = 0;
  bool quick = false, no_history = false, baseline = false, no_progress = false,
       no_interleave = false;
  std::string models_dir = "models";
};

// A one-line progress bar on stderr, redrawn in place on a terminal; plain lines otherwise
// (CI logs), one per workload.
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled), tty_(isatty(STDERR_FILENO) != 0) {}
  void workload(size_t index, size_t count) {
    index_ = index;
    count_ = count;
  }
  void update(int done, int total, const std::string& label) {
    if (!enabled_) return;
    if (!tty_) {
      if (done == 0 || done == total)
        std::fprintf(stderr, "[%zu/%zu] %s %d/%d\n", index_ + 1, count_, label.c_str(), done,
                     total);
      return;
    }
    constexpr int kWidth = 24;
    const int filled = total > 0 ? done * kWidth / total : 0;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\r\033[K[%s] %zu/%zu %s %d/%d", bar.c_str(), index_ + 1, count_,
                 label.c_str(), done, total);
    if (done == total) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  bool enabled_, tty_;
  size_t index_ = 0, count_ = 1;
};

std::string fmt_metric(const bench::WorkloadResult& w, const char* name, bool p90 = false) {
  auto it = w.metrics.find(name);
  if (it == w.metrics.end()) return "-";
  const double v = p90 ? it->second.p90() : it->second.median();
  return v >= 1000 ? fmt::format("{:.0f}", v) : fmt::format("{:.3g}", v);
}

void print_table(const bench::BenchResult& r) {
  std::printf("%s\n", fmt::format("{:<46} {:>7} {:>10} {:>10} {:>9} {:>8} {:>9} {:>9} {:>8}",
                                  "workload", "weights", "lat med ms", "lat p90 ms", "ttft ms",
                                  "itl ms", "tokens/s", "seq/s", "RSS MB")
                          .c_str());
  for (const auto& w : r.workloads) {
    auto rss = w.metrics.find("peak_rss_bytes");
    std::printf("%s\n", fmt::format("{:<46} {:>7} {:>10} {:>10} {:>9} {:>8} {:>9} {:>9} {:>8.0f}",
                                    w.spec.id(), w.spec.weights, fmt_metric(w, "latency_ms"),
                                    fmt_metric(w, "latency_ms", true), fmt_metric(w, "ttft_ms"),
                                    fmt_metric(w, "itl_ms"), fmt_metric(w, "tokens_s"),
                                    fmt_metric(w, "throughput_seq_s"),
                                    rss == w.metrics.end() ? 0.0 : rss->second.median() / 1e6)
                            .c_str());
  }
  const auto& env = r.environment;
  const auto cpu =
      env.value("hardware", nlohmann::json::object()).value("cpu", nlohmann::json::object());
  std::printf(
      "%s\n",
      fmt::format(
          "[{}, {} threads, build {} {}, env {}; medians of --repeat runs after --warmup]",
          cpu.value("model", "?"),
          env.value("threads", nlohmann::json::object()).value("num_threads", 0),
          env.value("build", nlohmann::json::object()).value("git_commit", "?").substr(0, 10),
          env.value("build", nlohmann::json::object()).value("build_type", "?"),
          env.value("env_key", "?"))
          .c_str());
}

// "auto": generation for causal LMs, a forward pass for encoders (read from config.json).
std::string resolve_kind(const std::string& kind, const std::string& model_dir) {
  if (kind != "auto") return kind;
  std::ifstream f(model_dir + "/config.json");
  if (!f) throw Error(ErrorCode::kNotFound, fmt::format("{}/config.json not found", model_dir));
  nlohmann::json c = nlohmann::json::parse(f, nullptr, false);
  if (c.is_discarded())
    throw Error(ErrorCode::kInvalidFile,
                fmt::format("{}/config.json is not valid JSON", model_dir));
  return c.value("model_type", "") == "bert" ? "forward" : "generate";
}

int compare_against_history(const bench::BenchResult& result, const bench::History& history,
                            int64_t exclude_run, const bench::CompareOptions& co) {
  bench::BenchResult base;
  base.environment = result.environment;
  const std::string env_key = result.environment.value("env_key", "");
  for (const auto& w : result.workloads) {
    if (auto e = history.latest(w.spec.id(), env_key, exclude_run)) {
      std::fprintf(stderr, "baseline for %s: run #%lld (%s, commit %s)\n", w.spec.id().c_str(),
                   static_cast<long long>(e->run_id), e->created_at.c_str(),
                   e->git_commit.substr(0, 10).c_str());
      base.workloads.push_back(e->result);
    }
  }
  if (base.workloads.empty()) {
    std::printf(
        "no baseline in %s for these workloads in this environment (env %s): nothing to compare\n",
        history.path().c_str(), env_key.c_str());
    return 0;
  }
  const auto cmp = bench::compare_results(base, result, co);
  std::printf("%s", bench::format_comparison(cmp, co, false).c_str());
  return cmp.has_regression() ? kExitRegression : 0;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// "A speedup that was not measured side by side is not claimed": when one invocation ran several
// levels/devices of a workload, print each one's ratio to the first.
void print_same_run_ratios(const std::vector<std::vector<bench::WorkloadResult>>& groups) {
  bool header = false;
  for (const auto& g : groups) {
    if (g.size() < 2) continue;
    if (!header) {
      std::printf(
          "\nsame-run ratios (medians; > 1 means faster than the variant or peer named):\n");
      header = true;
    }
    // Our variants against the first one; then each of ours against each peer.
    std::vector<std::pair<const bench::WorkloadResult*, const bench::WorkloadResult*>> pairs;
    for (size_t k = 1; k < g.size(); ++k) {
      if (g[k].spec.peer.empty()) pairs.emplace_back(&g[k], &g.front());
    }
    for (const auto& peer : g) {
      if (peer.spec.peer.empty()) continue;
      for (const auto& ours : g) {
        if (ours.spec.peer.empty()) pairs.emplace_back(&ours, &peer);
      }
    }
    for (const auto& [wp, bp] : pairs) {
      const auto& w = *wp;
      const auto& base = *bp;
      std::string line =
          fmt::format("  {:<46} vs {:<22}", w.spec.id(), base.spec.level + "/" + base.spec.device);
      auto ratio = [&](const char* metric, bool higher_is_better) {
        auto a = base.metrics.find(metric), b = w.metrics.find(metric);
        if (a == base.metrics.end() || b == w.metrics.end() || a->second.median() <= 0 ||
            b->second.median() <= 0)
          return;
        const double r = higher_is_better ? b->second.median() / a->second.median()
                                          : a->second.median() / b->second.median();
        line += fmt::format("  {} {:.2f}x", metric, r);
      };
      ratio("latency_ms", false);
      ratio("tokens_s", true);
      ratio("ttft_ms", false);
      std::printf("%s\n", line.c_str());
    }
  }
}

// --min-ratio "3x" (every workload) or "minilm=5x,llama-gate/generate=1.2" (the first prefix of
// the workload id that matches gives its floor; workloads that match none are not checked).
std::vector<std::pair<std::string, double>> parse_min_ratios(const std::string& text) {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& item : split_list(text)) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos) {
      out.emplace_back("", bench::parse_ratio(item));
    } else {
      if (eq == 0)
        throw Error(ErrorCode::kInvalidArgument,
                    fmt::format("--min-ratio: '{}' needs a workload prefix before '='", item));
      out.emplace_back(item.substr(0, eq), bench::parse_ratio(item.substr(eq + 1)));
    }
  }
  if (out.empty()) throw Error(ErrorCode::kInvalidArgument, "--min-ratio needs a value, e.g. 3x");
  return out;
}

double floor_for(const std::vector<std::pair<std::string, double>>& floors, const std::string& id) {
  for (const auto& [prefix, ratio] : floors) {
    if (id.rfind(prefix, 0) == 0) return ratio;
  }
  return 0;
}

int run_benchmark(const RunArgs& a) {
  std::vector<bench::WorkloadSpec> specs;
  if (!a.suite.empty()) {
    if (!a.model_dir.empty())
      throw Error(ErrorCode::kInvalidArgument, "give a MODEL_DIR or --suite, not both");
    bench::SuiteOptions so;
    so.quick = a.quick;
    so.models_dir = a.models_dir;
    so.level = "reference";  // variants are expanded below
    so.device = "cpu";
    so.repeat = a.repeat;
    so.warmup = a.warmup;
    so.threads = a.threads;
    specs = bench::load_suite(bench::find_suite(a.suite), so);
  } else {
    if (a.model_dir.empty())
      throw Error(ErrorCode::kInvalidArgument,
                  "give a MODEL_DIR or --suite NAME (e.g. --suite popular --quick)");
    bench::WorkloadSpec s;
    s.model_dir = a.model_dir;
    s.name = std::filesystem::path(a.model_dir).lexically_normal().filename().string();
    if (s.name.empty() || s.name == ".")
      s.name = std::filesystem::absolute(a.model_dir)
                   .lexically_normal()
                   .parent_path()
                   .filename()
                   .string();
    s.kind = resolve_kind(a.kind, a.model_dir);
    s.batch = a.batch;
    s.seq = a.seq;
    s.prompt_len = a.prompt_len;
    s.new_tokens = a.new_tokens;
    s.repeat = a.repeat > 0 ? a.repeat : (a.quick ? 5 : 10);
    s.warmup = a.warmup >= 0 ? a.warmup : 1;
    s.threads = a.threads;
    specs.push_back(s);
  }
  bench::CompareOptions co;
  co.threshold = bench::parse_threshold(a.threshold);
  // Fail on an unusable history before spending minutes measuring.
  std::optional<bench::History> history;
  if (!a.no_history)
    history = bench::History::open(a.history.empty() ? bench::default_history_path() : a.history);

  // Every workload once per level x device; the variants of one workload run interleaved.
  const auto levels = split_list(a.level), devices = split_list(a.device);
  if (levels.empty() || devices.empty())
    throw Error(ErrorCode::kInvalidArgument, "--level and --device need a value");
  for (const auto& l : levels) parse_level(l);  // fail before loading anything
  if (!a.min_ratio.empty()) {
    parse_min_ratios(a.min_ratio);
    if (levels.size() * devices.size() < 2)
      throw Error(ErrorCode::kInvalidArgument,
                  "--min-ratio compares variants of one run: give two or more --level/--device "
                  "values (e.g. --level reference,conservative)");
  }
  const auto peer_names = split_list(a.peers);
  for (const auto& p : peer_names) {
    const auto& known = bench::known_peers();
    if (std::find(known.begin(), known.end(), p) == known.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("--peers: unknown peer '{}' (known: {})", p, list));
    }
  }
  std::vector<std::vector<bench::WorkloadSpec>> groups;
  size_t n_total = 0;
  for (const auto& base : specs) {
    std::vector<bench::WorkloadSpec> variants;
    for (const auto& l : levels) {
      for (const auto& d : devices) {
        bench::WorkloadSpec v = base;
        v.level = l;
        v.device = d;
        variants.push_back(v);
      }
    }
    for (const auto& p : peer_names) {
      for (const auto& d : devices) {
        bench::WorkloadSpec v = base;
        v.peer = p;
        v.level = p;
        v.device = d;
        variants.push_back(v);
      }
    }
    n_total += variants.size();
    groups.push_back(std::move(variants));
  }

  bench::BenchResult result;
  result.created_at = bench::utc_now_iso8601();
  ProgressBar bar(!a.no_progress);
  std::vector<std::vector<bench::WorkloadResult>> done;
  size_t index = 0;
  for (const auto& variants : groups) {
    std::vector<bench::WorkloadResult> out;
    if (variants.size() > 1 && !a.no_interleave) {
      bar.workload(index, n_total);
      out = bench::run_interleaved(
          variants,
          [&](size_t k) {
            return [&, k](int d, int total, const std::string& label) {
              bar.workload(index + k, n_total);
              bar.update(d, total, label);
            };
          },
          &result.skipped);
    } else {
      for (size_t k = 0; k < variants.size(); ++k) {
        bar.workload(index + k, n_total);
        for (auto& w : bench::run_interleaved(
                 {variants[k]},
                 [&](size_t) {
                   return [&](int d, int total, const std::string& label) {
                     bar.update(d, total, label);
                   };
                 },
                 &result.skipped))
          out.push_back(std::move(w));
      }
    }
    index += variants.size();
    for (const auto& w : out) result.workloads.push_back(w);
    done.push_back(std::move(out));
  }
  // After the runs: the thread count and free memory are those the workloads saw.
  result.environment = bench::environment_json();
  if (!a.output.empty()) {
    bench::save_result(result, a.output);
    std::fprintf(stderr, "wrote %s\n", a.output.c_str());
  }
  print_table(result);
  for (const auto& s : result.skipped) std::printf("skipped peer %s\n", s.c_str());
  print_same_run_ratios(done);
  int rc = 0;
  if (!a.min_ratio.empty()) {
    const auto floors = parse_min_ratios(a.min_ratio);
    std::printf(
        "\nsame-run ratio floor (latency_ms, each variant vs the first; fails only when "
        "significant):\n");
    for (const auto& g : done) {
      for (size_t k = 1; k < g.size(); ++k) {
        if (!g[k].spec.peer.empty() || !g.front().spec.peer.empty()) continue;
        const double floor = floor_for(floors, g[k].spec.id());
        if (floor <= 0) continue;
        const auto check = bench::check_min_ratio(g.front(), g[k], floor);
        std::printf("%s", bench::format_ratio_check(check).c_str());
        if (check.verdict == bench::Verdict::kRegressed) rc = kExitRegression;
      }
    }
  }
  if (history) {
    const int64_t run_id = history->add(result);
    std::fprintf(stderr, "recorded as run #%lld in %s\n", static_cast<long long>(run_id),
                 history->path().c_str());
    if (a.baseline) rc = compare_against_history(result, *history, run_id, co);
  } else if (a.baseline) {
    throw Error(ErrorCode::kInvalidArgument,
                "--baseline compares against the history: drop --no-history");
  }
  return rc;
}

}  // namespace

Run add_benchmark(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "benchmark", "Measure latency, throughput and memory; keep history; catch regressions");
  auto a = std::make_shared<RunArgs>();
  cmd->add_option("model_dir", a->model_dir, "Hugging Face model directory (or use --suite)");
  cmd->add_option("--suite", a->suite, "run a suite from benchmarks/NAME.json (e.g. popular)");
  cmd->add_flag("--quick", a->quick,
                "the suite's small variant (minutes on a 2-core CPU); fewer repeats for one model");
  cmd->add_option("--models-dir", a->models_dir, "where suites look for real weights")
      ->capture_default_str();
  cmd->add_option("--kind", a->kind, "auto | forward | generate (auto: generate for causal LMs)")
      ->check(CLI::IsMember({"auto", "forward", "generate"}))
      ->capture_default_str();
  auto* level_opt =
      cmd->add_option(
             "--level", a->level,
             "optimization level; a comma-separated list runs each, interleaved (default: the "
             "plan of an optimized directory, else reference)")
          ->capture_default_str();
  auto* device_opt = cmd->add_option("--device", a->device,
                                     "cpu | cuda | cuda:N | auto; a comma-separated list runs each")
                         ->capture_default_str();
  cmd->add_flag(
      "--no-interleave", a->no_interleave,
      "run the levels/devices of a workload one after the other, not round-robin (less memory)");
  cmd->add_option("--threads", a->threads, "CPU threads (0: OMP_NUM_THREADS or all cores)")
      ->capture_default_str();
  cmd->add_option("--batch,-b", a->batch, "batch size")->capture_default_str();
  cmd->add_option("--seq,-s", a->seq, "sequence length (forward)")->capture_default_str();
  cmd->add_option("--prompt-len", a->prompt_len, "prompt length (generate)")->capture_default_str();
  cmd->add_option("--new-tokens", a->new_tokens, "tokens to generate (generate; EOS is ignored)")
      ->capture_default_str();
  cmd->add_option("--repeat,-r", a->repeat, "timed repetitions (default 10, 5 with --quick)");
  cmd->add_option("--warmup,-w", a->warmup, "untimed repetitions first (default 1)");
  cmd->add_option("--output,-o", a->output, "write the result JSON here");
  cmd->add_option("--history", a->history,
                  "history database (default $XDG_DATA_HOME/kernelpytorch/history.sqlite)");
  cmd->add_flag("--no-history", a->no_history, "do not record this run");
  cmd->add_flag("--baseline", a->baseline,
                "compare with the newest earlier run in the history; exit 3 on a regression");
  cmd->add_option("--threshold", a->threshold, "smallest change that counts (with --baseline)")
      ->capture_default_str();
  cmd->add_flag("--no-progress", a->no_progress, "no progress bar on stderr");
  cmd->add_option("--peers", a->peers,
                  "other engines on the same workload, interleaved with ours: pytorch, "
                  "torch-compile, onnxruntime, llamacpp (comma-separated; needs Python with the "
                  "peer installed; one that cannot run is skipped with the reason)");
  cmd->add_option("--min-ratio", a->min_ratio,
                  "fail (exit 3) when a variant is significantly less than this many times faster "
                  "than the first one (e.g. --level reference,conservative --min-ratio 3x); per "
                  "workload: PREFIX=N,... (the first workload-id prefix that matches)");

  // benchmark compare
  auto* cmp = cmd->add_subcommand(
      "compare", "Compare two results (or one with the history); exit 3 on a regression");
  struct CmpArgs {
    std::vector<std::string> files;
    std::string threshold = "5%", history;
    double alpha = 0.01;
    bool baseline = false, all = false;
  };
  auto c = std::make_shared<CmpArgs>();
  cmp->add_option("results", c->files, "BASE.json NEW.json, or NEW.json with --baseline")
      ->required();
  cmp->add_option("--threshold", c->threshold, "smallest relative change that counts (5% or 0.05)")
      ->capture_default_str();
  cmp->add_option("--alpha", c->alpha, "significance level of the Mann-Whitney U test")
      ->capture_default_str();
  cmp->add_flag("--baseline", c->baseline,
                "take the base from the history (newest run per workload, same environment)");
  cmp->add_option("--history", c->history, "history database for --baseline");
  cmp->add_flag("--all", c->all, "list unchanged metrics too");

  // benchmark history
  auto* hist =
      cmd->add_subcommand("history", "List recorded runs with sparklines and change points");
  struct HistArgs {
    std::string history, workload;
    std::vector<std::string> imports;
    size_t last = 10;
  };
  auto h = std::make_shared<HistArgs>();
  hist->add_option("--history", h->history, "history database");
  hist->add_option("--workload", h->workload, "only this workload id (see the listing)");
  hist->add_option("--last", h->last, "values listed per metric")->capture_default_str();
  hist->add_option("--import", h->imports,
                   "add result JSON files (e.g. CI artifacts) to the history first");

  // benchmark report
  auto* rep = cmd->add_subcommand("report", "Write a self-contained HTML report of the history");
  struct RepArgs {
    std::string history, output = "benchmark-report.html", workload;
  };
  auto r = std::make_shared<RepArgs>();
  rep->add_option("--history", r->history, "history database");
  rep->add_option("--output,-o", r->output, "HTML file to write")->capture_default_str();
  rep->add_option("--workload", r->workload, "only this workload id");

  cmd->footer(
      "Examples:\n"
      "  kernelpytorch benchmark models/smollm2-135m --prompt-len 32 --new-tokens 32 -o run.json\n"
      "  kernelpytorch benchmark --suite popular --quick -o popular.json\n"
      "  kernelpytorch benchmark compare base.json new.json --threshold 5%\n"
      "  kernelpytorch benchmark MODEL --level reference,conservative --min-ratio 3x --threads 1\n"
      "  kernelpytorch benchmark MODEL --level conservative --peers pytorch,onnxruntime --threads "
      "1\n"
      "  kernelpytorch benchmark history --workload gpt2/generate/b1-p32-n128/reference/cpu\n"
      "  kernelpytorch benchmark report -o report.html\n"
      "Exit status: 0 ok, 1 error, 2 usage, 3 regression (compare, --baseline, --min-ratio).");

  return [=]() -> int {
    auto history_path = [](const std::string& p) {
      return p.empty() ? bench::default_history_path() : p;
    };
    if (cmp->parsed()) {
      bench::CompareOptions co;
      co.threshold = bench::parse_threshold(c->threshold);
      co.alpha = c->alpha;
      if (c->baseline) {
        if (c->files.size() != 1)
          throw Error(ErrorCode::kInvalidArgument, "with --baseline give one result: NEW.json");
        const auto hp = history_path(c->history);
        if (!std::filesystem::exists(hp))
          throw Error(ErrorCode::kNotFound, fmt::format("no history at {}", hp));
        return compare_against_history(bench::load_result(c->files[0]), bench::History::open(hp),
                                       -1, co);
      }
      if (c->files.size() != 2)
        throw Error(ErrorCode::kInvalidArgument, "give two results: BASE.json NEW.json");
      const auto cmpres = bench::compare_results(bench::load_result(c->files[0]),
                                                 bench::load_result(c->files[1]), co);
      std::printf("%s", bench::format_comparison(cmpres, co, !c->all).c_str());
      return cmpres.has_regression() ? kExitRegression : 0;
    }
    if (hist->parsed() || rep->parsed()) {
      const auto hp = history_path(hist->parsed() ? h->history : r->history);
      if (hist->parsed() && !h->imports.empty()) {
        auto db = bench::History::open(hp);
        for (const auto& f : h->imports) {
          const int64_t id = db.add(bench::load_result(f));
          std::fprintf(stderr, "imported %s as run #%lld\n", f.c_str(), static_cast<long long>(id));
        }
      }
      if (!std::filesystem::exists(hp))
        throw Error(ErrorCode::kNotFound,
                    fmt::format("no history at {} (run a benchmark first)", hp));
      auto db = bench::History::open(hp);
      if (hist->parsed()) {
        std::printf(
            "%s",
            bench::format_history(bench::build_series(db.entries(h->workload)), h->last).c_str());
        return 0;
      }
      bench::ReportOptions ro;
      ro.source = hp;
      const std::string html = bench::render_html_report(db.entries(r->workload), ro);
      std::ofstream out(r->output);
      out << html;
      if (!out) throw Error(ErrorCode::kIo, fmt::format("cannot write {}", r->output));
      std::fprintf(stderr, "wrote %s\n", r->output.c_str());
      return 0;
    }
    // An optimized directory (kpt_plan.json) runs at its planned level and device unless told
    // otherwise, like forward and generate.
    if (!a->model_dir.empty() && level_opt->count() == 0) {
      if (auto plan = read_plan(a->model_dir)) {
        EngineOptions eo;
        eo.device = device_opt->count() == 0 ? "auto" : a->device;
        std::string note;
        eo = options_for_plan(*plan, eo, note);
        a->level = level_name(eo.level);
        if (device_opt->count() == 0) a->device = eo.device;
        std::fprintf(stderr, "optimized model: level %s on %s (from kpt_plan.json)\n",
                     a->level.c_str(), a->device.c_str());
        if (!note.empty()) std::fprintf(stderr, "note: %s\n", note.c_str());
      }
    }
    return run_benchmark(*a);
  };
}

}  // namespace kpt::cli
