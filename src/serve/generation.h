// The work behind /v1/completions, /v1/chat/completions and /v1/embeddings, independent of the
// HTTP library: validate and tokenize a request, hand it to the scheduler, and turn tokens into
// OpenAI response bodies or server-sent events.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "kpt/engine.h"
#include "kpt/tokenizer.h"
#include "serve/pooling.h"
#include "serve/protocol.h"
#include "serve/scheduler.h"
#include "serve/template/chat_template.h"

namespace kpt::serve {

// What the handlers need; fixed once the model is loaded.
struct ModelContext {
  Engine* engine = nullptr;
  const Tokenizer* tokenizer = nullptr;      // nullptr: token-id prompts only
  std::optional<ChatTemplate> chat_template;  // nullopt: /v1/chat/completions answers 400
  Pooling pooling;
  std::string name;           // the served model name
  Limits limits;              // max_tokens, context, vocab
  double request_timeout_s = 600;
  Scheduler* scheduler = nullptr;
  Metrics* metrics = nullptr;
};

enum class Kind { kCompletion, kChat };

class GenerationGroup;

// Validates, tokenizes and submits; throws ApiError (400 bad request, 404 unknown model, 429
// queue full with Retry-After, 503 shutting down).
std::shared_ptr<GenerationGroup> start_generation(const ModelContext& ctx, Kind kind, const Json& body);
bool is_streaming(const GenerationGroup& group);
// Blocks until every choice has finished; the response body, or ApiError.
Json wait_response(GenerationGroup& group);
// The next server-sent event, waiting at most `wait`: true with `event` set (possibly empty when
// nothing came yet), false once the stream has ended ("data: [DONE]" was the last event).
bool next_event(GenerationGroup& group, std::string& event, std::chrono::milliseconds wait);
void cancel(GenerationGroup& group);  // the client left: free its sequences now

// /v1/embeddings: blocks until pooled vectors are computed.
Json run_embeddings(const ModelContext& ctx, const Json& body);

}  // namespace kpt::serve
