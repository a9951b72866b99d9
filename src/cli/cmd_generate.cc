#include <cstdio>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "kpt/engine.h"
#include "kpt/tokenizer.h"

namespace kpt::cli {

namespace {
std::vector<int64_t> parse_ids(const std::string& text) {
  std::vector<int64_t> ids;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || item.find_first_not_of(" \t", used) != std::string::npos) {
      throw Error(ErrorCode::kInvalidArgument, fmt::format("--prompt-ids: '{}' is not an integer", item));
    }
    ids.push_back(v);
  }
  if (ids.empty()) throw Error(ErrorCode::kInvalidArgument, "--prompt-ids is empty");
  return ids;
}
}  // namespace

Run add_generate(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Continue a prompt with a causal LM (greedy by default)");
  auto opts = std::make_shared<ModelOptions>();
  add_model_options(*cmd, *opts);
  struct Args {
    std::string prompt, prompt_ids;
    int64_t max_new_tokens = 32;
    bool greedy = false, json = false, ignore_eos = false, no_special = false;
    double temperature = 1.0, top_p = 1.0, repetition_penalty = 1.0;
    int64_t top_k = 0;
    uint64_t seed = 0;
  };
  auto a = std::make_shared<Args>();
  auto* prompt = cmd->add_option("--prompt,-p", a->prompt, "prompt text (needs tokenizer.json in the model directory)");
  auto* prompt_ids = cmd->add_option("--prompt-ids", a->prompt_ids, "prompt as comma-separated token ids, e.g. 1,2,3");
  prompt->excludes(prompt_ids);
  cmd->add_option("--max-new-tokens,-n", a->max_new_tokens, "tokens to generate at most")->capture_default_str();
  auto* greedy = cmd->add_flag("--greedy", a->greedy, "pick the most likely token (the default)");
  auto* temp = cmd->add_option("--temperature", a->temperature, "sample with this temperature (> 0)");
  auto* topk = cmd->add_option("--top-k", a->top_k, "sample among the k most likely tokens (0: all)");
  auto* topp = cmd->add_option("--top-p", a->top_p, "sample from the smallest set with this total probability");
  auto* seed = cmd->add_option("--seed", a->seed, "random seed for sampling")->capture_default_str();
  for (auto* o : {temp, topk, topp, seed}) greedy->excludes(o);
  cmd->add_option("--repetition-penalty", a->repetition_penalty, "transformers' repetition penalty (1: off)");
  cmd->add_flag("--ignore-eos", a->ignore_eos, "keep going past the end-of-sequence token");
  cmd->add_flag("--no-special-tokens", a->no_special, "do not add the tokenizer's special tokens to the prompt");
  cmd->add_flag("--json", a->json, "print {\"ids\": [new ids], \"text\": new text} instead of streaming text");
  cmd->footer(
      "Examples:\n"
      "  kernelpytorch generate ./gpt2 --prompt \"The capital of France is\" -n 20\n"
      "  kernelpytorch generate ./llama --prompt-ids 1,450,7483 --temperature 0.8 --top-p 0.95 --seed 7 --json");
  return [=] {
    if (a->prompt.empty() && a->prompt_ids.empty()) {
      throw Error(ErrorCode::kInvalidArgument, "give the prompt with --prompt TEXT or --prompt-ids 1,2,3");
    }
    EngineOptions eo = engine_options(*opts);
    auto engine = Engine::load(opts->model_dir, eo);
    const Tokenizer* tok = engine->tokenizer();
    std::vector<int64_t> ids;
    if (!a->prompt_ids.empty()) {
      ids = parse_ids(a->prompt_ids);
    } else {
      if (tok == nullptr) {
        throw Error(ErrorCode::kNotFound, fmt::format("{} has no tokenizer.json; pass --prompt-ids instead of --prompt",
                                                      opts->model_dir));
      }
      ids = tok->encode(a->prompt, !a->no_special).ids;
      if (ids.empty()) throw Error(ErrorCode::kInvalidArgument, "the prompt encodes to no tokens");
    }
    GenerateOptions g;
    g.max_new_tokens = a->max_new_tokens;
    g.do_sample = temp->count() + topk->count() + topp->count() > 0;
    g.temperature = a->temperature;
    g.top_k = a->top_k;
    g.top_p = a->top_p;
    g.repetition_penalty = a->repetition_penalty;
    g.seed = a->seed;
    if (a->ignore_eos) g.eos_token_ids = std::vector<int64_t>{};
    std::vector<int64_t> so_far;
    std::string printed;
    if (!a->json) {
      if (!a->prompt.empty()) std::fputs(a->prompt.c_str(), stdout);
      std::fflush(stdout);
      // Stream: decode everything so far and print what is new, so multi-byte characters that
      // span tokens come out whole.
      g.on_token = [&](size_t, int64_t token) {
        so_far.push_back(token);
        if (tok != nullptr) {
          std::string text = tok->decode(so_far, true);
          if (text.size() > printed.size() && text.compare(0, printed.size(), printed) == 0 &&
              text.find("\xEF\xBF\xBD", printed.size()) == std::string::npos) {
            std::fputs(text.c_str() + printed.size(), stdout);
            printed = text;
          }
        } else {
          std::printf(" %lld", static_cast<long long>(token));
        }
        std::fflush(stdout);
        return true;
      };
    }
    GenerateResult r = engine->generate({ids}, g);
    const auto& out = r.new_ids[0];
    if (a->json) {
      nlohmann::json j;
      j["ids"] = out;
      j["text"] = tok != nullptr ? nlohmann::json(tok->decode(out, true)) : nlohmann::json(nullptr);
      j["finish_reason"] = r.finish_reasons[0];
      j["prompt_tokens"] = ids.size();
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      if (tok != nullptr) {
        std::string text = tok->decode(out, true);
        if (text.size() > printed.size()) std::fputs(text.c_str() + printed.size(), stdout);
      }
      std::printf("\n");
      double tps = r.decode_steps > 0 ? r.decode_steps / (r.decode_ms / 1e3) : 0.0;
      std::fprintf(stderr, "%s\n",
                   fmt::format("[{} prompt tokens, {} new ({}), prefill {:.1f} ms, decode {:.1f} tokens/s, {}]",
                               ids.size(), out.size(), r.finish_reasons[0], r.prefill_ms, tps, engine->device())
                       .c_str());
    }
    return 0;
  };
}

}  // namespace kpt::cli
