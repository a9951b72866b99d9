// Each subcommand registers itself on the app and returns the callback that runs it.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace kpt::cli {

using Run = std::function<int()>;

Run add_forward(CLI::App& app);
Run add_generate(CLI::App& app);
Run add_inspect(CLI::App& app);
Run add_tokenize(CLI::App& app);
Run add_benchmark(CLI::App& app);
Run add_doctor(CLI::App& app);

// Options every model-running command shares.
struct ModelOptions {
  std::string model_dir;
  std::string level = "reference";
  std::string device = "auto";
  int threads = 0;
  bool verbose = false;
};
void add_model_options(CLI::App& cmd, ModelOptions& opts);

}  // namespace kpt::cli
