#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/json_inputs.h"
#include "io/npy.h"
#include "kpt/engine.h"

namespace kpt::cli {

Run add_forward(CLI::App& app) {
  auto* cmd = app.add_subcommand("forward",
                                 "Run one forward pass and save the output as .npy: logits [batch, seq, vocab] for "
                                 "causal LMs, last_hidden_state [batch, seq, hidden] for encoders");
  auto opts = std::make_shared<ModelOptions>();
  auto inputs = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  add_model_options(*cmd, *opts);
  cmd->add_option("--inputs", *inputs,
                  "JSON file: {\"input_ids\": [[...]], \"attention_mask\": [[...]] (optional, default all ones), "
                  "\"token_type_ids\": [[...]] (optional)}")
      ->required();
  cmd->add_option("--output,-o", *output, "where to write the float32 .npy")->required();
  cmd->footer("Example:\n  kernelpytorch forward ./bert --inputs inputs.json --output out.npy");
  return [=] {
    ForwardInputs in = read_inputs_json(*inputs);
    EngineOptions eo = engine_options(*opts);
    auto engine = Engine::load(opts->model_dir, eo);
    auto t0 = std::chrono::steady_clock::now();
    Tensor out = engine->forward(in);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    io::write_npy(*output, out);
    std::fprintf(stderr, "%s\n",
                 fmt::format("wrote {} {} float32 to {} ({:.1f} ms, level {}, {})",
                             engine->info().causal_lm ? "logits" : "last_hidden_state", shape_str(out.shape()), *output,
                             ms, opts->level, engine->device())
                     .c_str());
    return 0;
  };
}

}  // namespace kpt::cli
