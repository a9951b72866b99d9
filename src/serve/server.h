// `kernelpytorch serve`: an OpenAI-compatible HTTP server (cpp-httplib) over the continuous-
// batching scheduler. See docs/serving.md for the API and docs/deployment.md for containers.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "kpt/engine.h"
#include "serve/scheduler.h"

namespace kpt::serve {

enum class Contract { kOpenAI, kSageMaker, kVertex };
Contract parse_contract(const std::string& name);  // throws kInvalidArgument naming the choices

struct ServeOptions {
  std::string model_dir;
  EngineOptions engine;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string served_model_name;   // default: the directory's name
  SchedulerOptions scheduler;
  int64_t max_tokens_limit = 4096;     // largest max_tokens a request may ask for
  double request_timeout_s = 600;      // from arrival to the last token
  size_t max_body_bytes = 8u << 20;    // larger bodies get 413
  std::string api_key;                 // empty: no authentication
  Contract contract = Contract::kOpenAI;
  // Vertex AI routes (from AIP_HEALTH_ROUTE / AIP_PREDICT_ROUTE when the contract is vertex).
  std::string health_route = "/health";
  std::string predict_route = "/predict";
  int http_threads = 0;  // 0: max_concurrent + max_queue + 8
  // Rows per decode call; -1: automatic (8 on CUDA above the reference level, where larger decode
  // batches switch to bf16-activation GEMMs and would change a request's tokens; else unlimited).
  int64_t max_decode_rows = -1;
};

// Fills host/port/routes from the contract's conventions (SageMaker: 0.0.0.0:8080; Vertex:
// AIP_HTTP_PORT, AIP_HEALTH_ROUTE, AIP_PREDICT_ROUTE) where the user did not set them.
void apply_contract_defaults(ServeOptions& options, bool host_given, bool port_given);

// Runs until SIGTERM/SIGINT (drains running requests first) or a fatal error. Prints the
// address when listening. Returns the process exit code.
int serve(const ServeOptions& options);

// Constant-time comparison for API keys: the time taken does not depend on where they differ.
bool constant_time_equal(const std::string& a, const std::string& b);

}  // namespace kpt::serve
