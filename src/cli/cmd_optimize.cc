// kernelpytorch optimize: build the requested level, hold it to the accuracy budget against
// `reference` on sample inputs, measure the speedup, and write an optimized model directory.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "kpt/engine.h"
#include "kpt/tokenizer.h"
#include "optimize/accuracy.h"
#include "optimize/hardware.h"

namespace kpt::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Built-in sample text: prose, dialogue, code, numbers and other scripts, so the accuracy check
// sees more than one kind of input.
const std::vector<std::string>& builtin_texts() {
  static const std::vector<std::string> kTexts = {
      "The history of the printing press begins in the fifteenth century, when movable type made books cheaper "
      "and spread literacy across Europe. Within fifty years, millions of volumes had been printed.",
      "Q: How do I reverse a list in Python?\nA: Use slicing, items[::-1], or call items.reverse() to reverse it "
      "in place.",
      "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
      "In 2023 the company reported revenue of $4.2 billion, up 17% from the previous year, and 12,500 employees.",
      "Le chat dort sur le canapé pendant que la pluie tombe doucement sur les toits de Paris.",
      "Photosynthesis converts light energy into chemical energy: carbon dioxide and water become glucose and "
      "oxygen inside the chloroplasts of plant cells.",
  };
  return kTexts;
}

// Token rows (right-padded, with mask) from texts, or seeded random ids without a tokenizer.
ForwardInputs make_samples(const Engine& engine, const std::vector<std::string>& texts, int64_t max_len) {
  ForwardInputs in;
  const Tokenizer* tok = engine.tokenizer();
  const ModelInfo& info = engine.info();
  if (info.max_positions > 0) max_len = std::min(max_len, info.max_positions);
  if (tok != nullptr) {
    for (const auto& t : texts) {
      auto ids = tok->encode(t, true).ids;
      if (ids.empty()) continue;
      if (static_cast<int64_t>(ids.size()) > max_len) ids.resize(static_cast<size_t>(max_len));
      in.input_ids.push_back(ids);
    }
  }
  if (in.input_ids.empty()) {
    std::mt19937_64 rng(1234);
    for (int r = 0; r < 4; ++r) {
      std::vector<int64_t> row;
      for (int64_t i = 0; i < std::min<int64_t>(max_len, 48); ++i) row.push_back(static_cast<int64_t>(rng() % info.vocab_size));
      in.input_ids.push_back(row);
    }
  }
  size_t len = 0;
  for (const auto& r : in.input_ids) len = std::max(len, r.size());
  const int64_t pad = info.pad_token_id.value_or(0);
  for (auto& r : in.input_ids) {
    std::vector<int64_t> mask(r.size(), 1);
    mask.resize(len, 0);
    r.resize(len, pad >= 0 && pad < info.vocab_size ? pad : 0);
    in.attention_mask.push_back(mask);
  }
  return in;
}

double median_ms(Engine& engine, const ForwardInputs& in, int repeats) {
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    engine.forward(in);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

std::string hardware_fingerprint(const hw::Hardware& h, const std::string& device) {
  if (device.rfind("cuda", 0) == 0) {
    size_t idx = device.size() > 5 ? std::stoul(device.substr(5)) : 0;
    if (idx < h.gpu.gpus.size()) {
      const auto& g = h.gpu.gpus[idx];
      return fmt::format("{}: {} (sm_{}{}, {:.0f} GiB)", device, g.name, g.cc_major, g.cc_minor,
                         g.memory_bytes / 1073741824.0);
    }
  }
  return fmt::format("cpu: {} [{}], {} cores", h.cpu.model, fmt::join(h.cpu.flags(), " "), h.cpu.usable_cores);
}

// Copies the model directory: small files copied, weights hard-linked when possible.
void copy_model_dir(const fs::path& from, const fs::path& to) {
  for (const auto& e : fs::recursive_directory_iterator(from)) {
    const fs::path rel = e.path().lexically_relative(from);
    if (rel == "kpt_plan.json" || rel == "kpt_report.json") continue;
    const fs::path dst = to / rel;
    if (e.is_directory()) {
      fs::create_directories(dst);
      continue;
    }
    if (!e.is_regular_file()) continue;
    std::error_code ec;
    if (e.path().extension() == ".safetensors") fs::create_hard_link(e.path(), dst, ec);
    if (e.path().extension() != ".safetensors" || ec) fs::copy_file(e.path(), dst, fs::copy_options::overwrite_existing);
  }
}

}  // namespace

Run add_optimize(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "optimize",
      "Optimize a model for this machine, check it against the reference level, and save it as an optimized "
      "model directory that forward/generate/benchmark load directly");
  struct Args {
    std::string model_dir, out_dir, report_json, samples, level = "production", hardware = "auto";
    int threads = 0, repeats = 5;
    int64_t max_len = 64;
    bool no_preserve = false, force = false, verbose = false;
    double top1 = 0.99, kl = 0.01, cosine = 0.999;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("model_dir", a->model_dir, "Hugging Face model directory")->required();
  cmd->add_option("--level", a->level, "conservative | balanced | aggressive | production (the fastest that passes)")
      ->capture_default_str();
  cmd->add_option("--hardware", a->hardware, "auto | cpu | cuda | cuda:N")->capture_default_str();
  cmd->add_option("-o,--output", a->out_dir, "where to write the optimized model directory")->required();
  cmd->add_option("--json", a->report_json, "also write the report as JSON here");
  cmd->add_option("--samples", a->samples, "JSON list of texts for the accuracy check (default: built-in text)");
  cmd->add_option("--max-len", a->max_len, "tokens per sample at most")->capture_default_str();
  cmd->add_option("--repeat", a->repeats, "timed forward passes per level (median)")->capture_default_str();
  cmd->add_flag("--no-preserve-accuracy", a->no_preserve, "write the result even if it misses the accuracy budget");
  cmd->add_option("--min-top1", a->top1, "budget: next-token top-1 agreement (causal LMs)")->capture_default_str();
  cmd->add_option("--max-kl", a->kl, "budget: mean KL divergence in nats (causal LMs)")->capture_default_str();
  cmd->add_option("--min-cosine", a->cosine, "budget: per-token cosine similarity (encoders)")->capture_default_str();
  cmd->add_option("--threads", a->threads, "CPU threads (0: all cores)");
  cmd->add_flag("--force", a->force, "overwrite a non-empty output directory");
  cmd->add_flag("-v,--verbose", a->verbose, "engine load reports on stderr");
  cmd->footer(
      "Example:\n  kernelpytorch optimize models/smollm2-135m --level production -o models/smollm2-135m-opt\n"
      "  kernelpytorch generate models/smollm2-135m-opt --prompt \"Hello\"   # uses the saved plan");
  return [=] {
    auto say = [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); };
    const Level level = parse_level(a->level);
    if (level == Level::kReference) {
      throw Error(ErrorCode::kInvalidArgument, "--level reference is the unoptimized oracle; choose conservative, "
                                               "balanced, aggressive or production");
    }
    if (fs::exists(a->out_dir) && !fs::is_empty(a->out_dir) && !a->force) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("output directory {} is not empty; pass --force to overwrite it", a->out_dir));
    }
    if (fs::exists(a->out_dir) && fs::exists(a->model_dir) && fs::equivalent(a->model_dir, a->out_dir)) {
      throw Error(ErrorCode::kInvalidArgument, "the output directory must differ from the model directory");
    }

    say("[1/5] detecting hardware");
    const hw::Hardware hwinfo = hw::detect_hardware(3000);
    EngineOptions base;
    base.device = a->hardware;
    base.num_threads = a->threads;
    base.verbose = a->verbose;

    say("[2/5] loading the reference level (fp32 oracle)");
    base.level = Level::kReference;
    auto ref = Engine::load(a->model_dir, base);
    const std::string device = ref->device();
    const std::string fingerprint = hardware_fingerprint(hwinfo, device);
    say(fmt::format("      device {} — {}", device, fingerprint));
    if (a->hardware == "auto" && device == "cpu") {
      say(fmt::format("      (auto chose cpu: {})", hwinfo.gpu.gpus.empty()
                                                          ? (hwinfo.gpu.error.empty() ? "no GPU found" : hwinfo.gpu.error)
                                                          : "this build has no CUDA backend"));
    }

    std::vector<std::string> texts = builtin_texts();
    if (!a->samples.empty()) {
      std::ifstream f(a->samples);
      if (!f) throw Error(ErrorCode::kNotFound, "cannot read " + a->samples);
      json j;
      try {
        j = json::parse(f);
      } catch (const json::exception& e) {
        throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: not valid JSON ({})", a->samples, e.what()));
      }
      if (!j.is_array() || j.empty()) throw Error(ErrorCode::kInvalidArgument, a->samples + ": must be a non-empty list of strings");
      texts.clear();
      for (const auto& t : j) {
        if (!t.is_string()) throw Error(ErrorCode::kInvalidArgument, a->samples + ": every entry must be a string");
        texts.push_back(t.get<std::string>());
      }
    }
    const ForwardInputs samples = make_samples(*ref, texts, a->max_len);
    int64_t n_tokens = 0;
    for (const auto& m : samples.attention_mask) n_tokens += std::count(m.begin(), m.end(), 1);

    say(fmt::format("[3/5] building level {}{}", a->level,
                    level == Level::kProduction ? " (measuring every candidate on this machine)" : ""));
    base.level = level;
    auto cand = Engine::load(a->model_dir, base);
    const Level chosen = cand->effective_level();
    for (const auto& line : cand->pass_report()) say("      " + line);

    say(fmt::format("[4/5] checking accuracy and speed on {} sequences ({} tokens), {} timed runs each",
                    samples.input_ids.size(), n_tokens, a->repeats));
    const Tensor ref_out = ref->forward(samples);
    const Tensor cand_out = cand->forward(samples);
    std::vector<uint8_t> valid;
    for (const auto& m : samples.attention_mask) {
      for (int64_t v : m) valid.push_back(static_cast<uint8_t>(v));
    }
    const int64_t dim = ref_out.dim(-1);
    const optimize::Agreement agree = optimize::compare_outputs(
        ref_out.data<float>(), cand_out.data<float>(), ref_out.numel() / dim, dim, ref->info().causal_lm, valid);
    const optimize::Budget budget{a->top1, a->kl, a->cosine};
    const bool passes = optimize::within_budget(agree, budget);
    // Interleave the timings so load changes on a shared machine hit both alike.
    std::vector<double> ref_ms, cand_ms;
    median_ms(*ref, samples, 1);
    median_ms(*cand, samples, 1);
    for (int i = 0; i < a->repeats; ++i) {
      ref_ms.push_back(median_ms(*ref, samples, 1));
      cand_ms.push_back(median_ms(*cand, samples, 1));
    }
    std::sort(ref_ms.begin(), ref_ms.end());
    std::sort(cand_ms.begin(), cand_ms.end());
    const double r_ms = ref_ms[ref_ms.size() / 2], c_ms = cand_ms[cand_ms.size() / 2];
    say(fmt::format("      accuracy: {} — {}", agree.summary(), passes ? "within budget" : "OUTSIDE the budget"));
    say(fmt::format("      forward: reference {:.1f} ms, {} {:.1f} ms, speedup {:.2f}x (median of {})", r_ms,
                    level_name(chosen), c_ms, r_ms / c_ms, a->repeats));

    json report = {
        {"model", fs::absolute(a->model_dir).string()},
        {"requested_level", a->level},
        {"level", level_name(chosen)},
        {"device", device},
        {"hardware", fingerprint},
        {"passes", cand->pass_report()},
        {"accuracy",
         {{"causal_lm", agree.causal_lm},
          {"positions", agree.n_positions},
          {"top1_agreement", agree.top1_agreement},
          {"mean_kl", agree.mean_kl},
          {"min_cosine", agree.min_cosine},
          {"mean_cosine", agree.mean_cosine},
          {"budget", {{"min_top1_agreement", budget.min_top1_agreement}, {"max_mean_kl", budget.max_mean_kl},
                      {"min_cosine", budget.min_cosine}}},
          {"passes", passes}}},
        {"timing",
         {{"what", fmt::format("forward of {} sequences, {} tokens", samples.input_ids.size(), n_tokens)},
          {"reference_ms_median", r_ms},
          {"optimized_ms_median", c_ms},
          {"reference_ms", ref_ms},
          {"optimized_ms", cand_ms},
          {"speedup", r_ms / c_ms}}},
    };
    if (!a->report_json.empty()) std::ofstream(a->report_json) << report.dump(2) << "\n";
    if (!passes && !a->no_preserve) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("level {} fails the accuracy budget ({}); nothing written. Choose a more exact level, "
                              "relax the budget, or pass --no-preserve-accuracy",
                              level_name(chosen), agree.summary()));
    }

    say(fmt::format("[5/5] writing {}", a->out_dir));
    fs::create_directories(a->out_dir);
    copy_model_dir(a->model_dir, a->out_dir);
    json plan = report;
    plan["format"] = "kernelpytorch-plan/1";
    plan["kernelpytorch_version"] = "0.1.0";
    std::time_t now = std::time(nullptr);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    plan["created"] = when;
    std::ofstream(fs::path(a->out_dir) / "kpt_plan.json") << plan.dump(2) << "\n";
    std::printf("optimized %s -> %s: level %s on %s, %.2fx faster than reference (%.1f -> %.1f ms), %s\n",
                a->model_dir.c_str(), a->out_dir.c_str(), level_name(chosen), device.c_str(), r_ms / c_ms, r_ms, c_ms,
                agree.summary().c_str());
    return 0;
  };
}

}  // namespace kpt::cli
