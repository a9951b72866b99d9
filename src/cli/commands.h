// Each subcommand registers itself on the app and returns the callback that runs it.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "kpt/engine.h"

namespace kpt::cli {

using Run = std::function<int()>;

Run add_forward(CLI::App& app);
Run add_generate(CLI::App& app);
Run add_inspect(CLI::App& app);
Run add_tokenize(CLI::App& app);
Run add_optimize(CLI::App& app);
Run add_benchmark(CLI::App& app);
Run add_doctor(CLI::App& app);
Run add_serve(CLI::App& app);

// Options every model-running command shares.
struct ModelOptions {
  std::string model_dir;
  std::string level = "reference";
  std::string device = "auto";
  int threads = 0;
  bool verbose = false;
  CLI::Option* level_option = nullptr;  // to tell a given --level from the default
};
void add_model_options(CLI::App& cmd, ModelOptions& opts);
// EngineOptions from the command line. For an optimized directory (kpt_plan.json) without an
// explicit --level, the plan's level (and device, when this machine has it) are used; what was
// adapted is printed to stderr.
kpt::EngineOptions engine_options(const ModelOptions& opts);

}  // namespace kpt::cli
