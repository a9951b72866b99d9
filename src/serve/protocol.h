// The OpenAI HTTP API as the server speaks it: request parsing with clear 4xx errors (in
// OpenAI's error format) and response bodies. No I/O here, so it is tested on its own.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace kpt::serve {

using Json = nlohmann::ordered_json;

// An error a client caused (or a server state it must know about), sent as
// {"error": {"message", "type", "param", "code"}} with `status`.
struct ApiError : std::runtime_error {
  ApiError(int status, std::string message, std::string type = "invalid_request_error", std::string param = "",
           std::string code = "");
  int status;
  std::string type, param, code;
  Json body() const;
};

struct Limits {
  int64_t max_tokens = 4096;       // largest max_tokens a request may ask for
  int64_t context = 0;             // the model's positions (0: unbounded)
  int64_t vocab_size = 0;
};

// Options shared by completions and chat completions.
struct SamplingRequest {
  std::string model;
  std::optional<int64_t> max_tokens;  // nullopt: the endpoint's default
  double temperature = 1.0;           // 0: greedy
  double top_p = 1.0;
  int64_t top_k = 0;
  double repetition_penalty = 1.0;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool ignore_eos = false;     // extension: generate max_tokens tokens (load tests, benchmarks)
};

using Prompt = std::variant<std::string, std::vector<int64_t>>;  // text or token ids

struct CompletionRequest : SamplingRequest {
  std::vector<Prompt> prompts;  // one choice each
};

struct ChatRequest : SamplingRequest {
  Json messages;                  // validated: [{role, content}, ...]
  Json template_extra = Json::object();  // tools, documents, chat_template_kwargs
};

struct EmbeddingsRequest {
  std::string model;
  std::vector<Prompt> inputs;
  bool base64 = false;
};

Json parse_json_body(const std::string& body);  // 400 naming the position when malformed
CompletionRequest parse_completion(const Json& body, const Limits& limits);
ChatRequest parse_chat(const Json& body, const Limits& limits);
EmbeddingsRequest parse_embeddings(const Json& body, const Limits& limits);

// "cmpl-…", "chatcmpl-…", "embd-…": random 24 hex digits after the prefix.
std::string new_id(const std::string& prefix);
int64_t unix_time();

Json usage_json(int64_t prompt_tokens, int64_t completion_tokens);
// Little-endian float32 bytes in base64 (what the openai client asks for by default).
std::string base64_floats(const std::vector<float>& values);
std::string sse(const Json& event);  // "data: {...}\n\n"

}  // namespace kpt::serve
