#include <cstdio>

#include "cli/commands.h"
#include "kpt/engine.h"

namespace kpt::cli {

Run add_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Load a model, check it against its weight schema and describe it");
  auto opts = std::make_shared<ModelOptions>();
  auto graph = std::make_shared<bool>(false);
  add_model_options(*cmd, *opts);
  cmd->add_flag("--graph", *graph, "also print the graph, one named node per line");
  return [=] {
    EngineOptions eo = engine_options(*opts);
    auto engine = Engine::load(opts->model_dir, eo);
    std::fputs(engine->describe().c_str(), stdout);
    if (*graph) std::fputs(engine->graph_dump().c_str(), stdout);
    return 0;
  };
}

}  // namespace kpt::cli
