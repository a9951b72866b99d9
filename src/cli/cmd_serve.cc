// kernelpytorch serve: an OpenAI-compatible HTTP server with continuous batching.
#include <cstdio>
#include <cstdlib>

#include "cli/commands.h"
#include "serve/server.h"

namespace kpt::cli {

Run add_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "serve",
      "Serve a model over HTTP with the OpenAI API: /v1/completions, /v1/chat/completions, /v1/embeddings,\n"
      "/v1/models, streaming (server-sent events), /health, /ready and Prometheus /metrics. Requests are\n"
      "batched continuously: new ones join the running batch between decode steps. SIGTERM drains and exits.\n"
      "Example: kernelpytorch serve models/smollm2-135m-opt --port 8000\n"
      "         curl localhost:8000/v1/chat/completions -H 'Content-Type: application/json' \\\n"
      "           -d '{\"model\": \"smollm2-135m-opt\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}'");
  auto opts = std::make_shared<ModelOptions>();
  auto so = std::make_shared<serve::ServeOptions>();
  auto contract = std::make_shared<std::string>("openai");
  add_model_options(*cmd, *opts);
  auto* host = cmd->add_option("--host", so->host,
                               "address to bind; 127.0.0.1 keeps the server local, 0.0.0.0 exposes it (containers)")
                   ->capture_default_str();
  auto* port = cmd->add_option("--port", so->port, "TCP port")->capture_default_str()->check(CLI::Range(1, 65535));
  cmd->add_option("--served-model-name", so->served_model_name,
                  "the name clients send as 'model' (default: the directory's name)");
  cmd->add_option("--max-batch-tokens", so->scheduler.max_batch_tokens,
                  "token budget per step: decode rows + prompt-chunk tokens (long prompts are prefilled in chunks)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--max-concurrent", so->scheduler.max_concurrent, "sequences in the running batch")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  cmd->add_option("--max-queue", so->scheduler.max_queue,
                  "requests waiting to join before new ones get HTTP 429 with Retry-After")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_option("--max-decode-rows", so->max_decode_rows,
                  "sequences per decode call (-1: auto = 8 on CUDA above reference, where larger batches use "
                  "other GEMM kernels and would change outputs; 0: all in one call)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{-1}, int64_t{1} << 20));
  cmd->add_option("--max-tokens-limit", so->max_tokens_limit, "the largest max_tokens a request may ask for")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  cmd->add_option("--request-timeout", so->request_timeout_s, "seconds from arrival to the last token")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 1e7));
  cmd->add_option("--max-body-bytes", so->max_body_bytes, "larger request bodies get HTTP 413")->capture_default_str();
  cmd->add_option("--api-key", so->api_key,
                  "require 'Authorization: Bearer KEY' on /v1/* (default: env KPT_API_KEY; none when unset)");
  cmd->add_option("--contract", *contract,
                  "openai | sagemaker (adds GET /ping, POST /invocations; 0.0.0.0:8080) | vertex (AIP_HTTP_PORT, "
                  "AIP_HEALTH_ROUTE, AIP_PREDICT_ROUTE; {\"instances\": [...]} -> {\"predictions\": [...]})")
      ->capture_default_str();
  return [=]() {
    serve::ServeOptions o = *so;
    o.model_dir = opts->model_dir;
    o.engine = engine_options(*opts);
    o.contract = serve::parse_contract(*contract);
    if (o.api_key.empty()) {
      if (const char* k = std::getenv("KPT_API_KEY")) o.api_key = k;
    }
    serve::apply_contract_defaults(o, host->count() > 0, port->count() > 0);
    if (o.host != "127.0.0.1" && o.host != "localhost" && o.host != "::1" && o.api_key.empty()) {
      std::fprintf(stderr, "note: listening on %s without an API key: anyone who can reach this port can use it\n",
                   o.host.c_str());
    }
    return serve::serve(o);
  };
}

}  // namespace kpt::cli
