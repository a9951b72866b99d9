// kernelpytorch: the command line. Errors print "error: ..." and exit 1; usage errors exit 2.
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "kpt/status.h"

namespace kpt::cli {

void add_model_options(CLI::App& cmd, ModelOptions& opts) {
  cmd.add_option("model_dir", opts.model_dir, "Hugging Face model directory (config.json + *.safetensors)")
      ->required();
  opts.level_option = cmd.add_option("--level", opts.level,
                 "optimization level: reference | conservative | balanced | aggressive | production")
      ->capture_default_str();
  cmd.add_option("--device", opts.device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  cmd.add_option("--threads", opts.threads, "CPU threads (0: OMP_NUM_THREADS or all cores)")->capture_default_str();
  cmd.add_flag("-v,--verbose", opts.verbose, "progress and load report on stderr");
}

EngineOptions engine_options(const ModelOptions& opts) {
  EngineOptions eo;
  eo.level = parse_level(opts.level);
  eo.device = opts.device;
  eo.num_threads = opts.threads;
  eo.verbose = opts.verbose;
  if (opts.level_option == nullptr || opts.level_option->count() == 0) {
    if (auto plan = read_plan(opts.model_dir)) {
      std::string note;
      eo = options_for_plan(*plan, eo, note);
      std::fprintf(stderr, "optimized model: level %s on %s (from kpt_plan.json)\n", level_name(eo.level),
                   eo.device.c_str());
      if (!note.empty()) std::fprintf(stderr, "note: %s\n", note.c_str());
    }
  }
  return eo;
}

}  // namespace kpt::cli

int main(int argc, char** argv) {
  CLI::App app{
      "KernelPyTorch: run Hugging Face transformer models (BERT, GPT-2, LLaMA/Mistral/Qwen2) fast.\n"
      "Every command takes a model directory with config.json and safetensors weights."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "kernelpytorch 0.1.0");
  std::map<CLI::App*, kpt::cli::Run> runs;
  auto reg = [&](kpt::cli::Run (*add)(CLI::App&)) {
    size_t before = app.get_subcommands({}).size();
    auto run = add(app);
    runs[app.get_subcommands({})[before]] = run;
  };
  reg(&kpt::cli::add_forward);
  reg(&kpt::cli::add_generate);
  reg(&kpt::cli::add_tokenize);
  reg(&kpt::cli::add_inspect);
  reg(&kpt::cli::add_optimize);
  reg(&kpt::cli::add_benchmark);
  reg(&kpt::cli::add_doctor);
  reg(&kpt::cli::add_serve);
  // Invoked as kpt-benchmark / kpt-doctor / kpt-optimize (symlinks): run that subcommand.
  std::vector<char*> args(argv, argv + argc);
  std::string alias_cmd;
  {
    std::string self = argv[0];
    self = self.substr(self.find_last_of('/') + 1);
    if (self.rfind("kpt-", 0) == 0) alias_cmd = self.substr(4);
    if (!alias_cmd.empty()) args.insert(args.begin() + 1, alias_cmd.data());
  }
  argc = static_cast<int>(args.size());
  argv = args.data();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help/--version exit 0; every usage error exits 2 (CLI11's own codes vary by kind).
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    for (auto* sub : app.get_subcommands()) return runs.at(sub)();
  } catch (const kpt::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
