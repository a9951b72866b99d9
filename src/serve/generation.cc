#include "serve/generation.h"

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <random>

#include <fmt/format.h>

#include "serve/text_stream.h"

namespace kpt::serve {

namespace {

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

void check_model(const ModelContext& ctx, const std::string& model) {
  if (model != ctx.name) {
    throw ApiError(404, fmt::format("the model '{}' does not exist; this server serves '{}'", model, ctx.name),
                   "invalid_request_error", "model", "model_not_found");
  }
}

std::vector<int64_t> tokenize(const ModelContext& ctx, const Prompt& p, bool add_special_tokens, const char* param) {
  if (std::holds_alternative<std::vector<int64_t>>(p)) return std::get<std::vector<int64_t>>(p);
  if (ctx.tokenizer == nullptr) {
    throw ApiError(400, "the model directory has no tokenizer.json: send token ids instead of text", "invalid_request_error",
                   param);
  }
  return ctx.tokenizer->encode(std::get<std::string>(p), add_special_tokens).ids;
}

}  // namespace

class GenerationGroup {
 public:
  struct Choice {
    std::unique_ptr<TextStream> text;  // nullptr without a tokenizer
    std::string output;
    std::string finish_reason;
    int64_t prompt_tokens = 0, completion_tokens = 0;
  };

  Kind kind;
  bool stream = false, include_usage = false;
  std::string id, model;
  int64_t created = 0;
  std::vector<std::shared_ptr<GenerationRequest>> requests;

  std::mutex mutex;
  std::condition_variable cv;
  std::vector<Choice> choices;
  size_t remaining = 0;
  std::deque<std::string> events;  // SSE, when streaming
  bool ended = false;              // every choice finished (events holds the tail)
  std::optional<ApiError> error;

  Json chunk(size_t index, const std::string& text, const char* finish_reason) const {
    Json c;
    c["index"] = index;
    if (kind == Kind::kChat) {
      c["delta"] = finish_reason ? Json::object() : Json{{"content", text}};
    } else {
      c["text"] = text;
    }
    c["logprobs"] = nullptr;
    c["finish_reason"] = finish_reason ? Json(finish_reason) : Json(nullptr);
    return Json{{"id", id},
                {"object", kind == Kind::kChat ? "chat.completion.chunk" : "text_completion"},
                {"created", created},
                {"model", model},
                {"choices", Json::array({c})}};
  }

  Json usage() const {
    int64_t p = 0, c = 0;
    for (const auto& ch : choices) {
      p += ch.prompt_tokens;
      c += ch.completion_tokens;
    }
    return usage_json(p, c);
  }

  // Scheduler thread.
  bool on_token(size_t i, int64_t token) {
    std::lock_guard<std::mutex> lock(mutex);
    Choice& ch = choices[i];
    std::string piece = ch.text ? ch.text->push(token) : fmt::format(" {}", token);
    if (!piece.empty()) {
      ch.output += piece;
      if (stream) events.push_back(sse_text(chunk(i, piece, nullptr)));
    }
    cv.notify_all();
    return !(ch.text && ch.text->stopped());
  }

  void on_finish(size_t i, Finish f, int64_t generated, const std::string& message) {
    std::lock_guard<std::mutex> lock(mutex);
    Choice& ch = choices[i];
    ch.completion_tokens = generated;
    if (f == Finish::kError || f == Finish::kCancelled || f == Finish::kTimeout) {
      if (!error) {
        error = f == Finish::kTimeout   ? ApiError(408, "the request timed out before generation finished", "timeout")
                : f == Finish::kError   ? ApiError(500, "generation failed: " + message, "server_error")
                                        : ApiError(503, "the request was cancelled (client gone or server stopping)",
                                                   "server_error");
      }
      ch.finish_reason = "error";
      if (stream) events.push_back(sse_text(error->body()));
    } else {
      if (ch.text) {
        std::string tail = ch.text->finish();
        if (!tail.empty()) {
          ch.output += tail;
          if (stream) events.push_back(sse_text(chunk(i, tail, nullptr)));
        }
      }
      ch.finish_reason = f == Finish::kLength ? "length" : "stop";
      if (stream) events.push_back(sse_text(chunk(i, "", ch.finish_reason.c_str())));
    }
    if (--remaining == 0) {
      if (stream) {
        if (include_usage && !error) {
          Json u{{"id", id},
                 {"object", kind == Kind::kChat ? "chat.completion.chunk" : "text_completion"},
                 {"created", created},
                 {"model", model},
                 {"choices", Json::array()},
                 {"usage", usage()}};
          events.push_back(sse_text(u));
        }
        events.push_back("data: [DONE]\n\n");
      }
      ended = true;
    }
    cv.notify_all();
  }

  static std::string sse_text(const Json& j) { return "data: " + dump(j) + "\n\n"; }
};

std::shared_ptr<GenerationGroup> start_generation(const ModelContext& ctx, Kind kind, const Json& body) {
  const ModelInfo& info = ctx.engine->info();
  if (!info.causal_lm) {
    throw ApiError(400, fmt::format("'{}' is an encoder ({}): it serves /v1/embeddings, not text generation", ctx.name,
                                    info.architecture));
  }
  SamplingRequest params;
  std::vector<std::vector<int64_t>> prompts;
  if (kind == Kind::kCompletion) {
    CompletionRequest r = parse_completion(body, ctx.limits);
    check_model(ctx, r.model);
    for (const auto& p : r.prompts) prompts.push_back(tokenize(ctx, p, true, "prompt"));
    params = r;
  } else {
    ChatRequest r = parse_chat(body, ctx.limits);
    check_model(ctx, r.model);
    if (!ctx.chat_template) {
      throw ApiError(400, fmt::format("'{}' has no chat template (chat_template.jinja or tokenizer_config.json's "
                                      "chat_template); use /v1/completions",
                                      ctx.name));
    }
    if (ctx.tokenizer == nullptr) throw ApiError(400, "the model directory has no tokenizer.json: chat needs one");
    std::string text;
    try {
      text = ctx.chat_template->render(r.messages, true, r.template_extra);
    } catch (const Error& e) {
      throw ApiError(400, fmt::format("the chat template refused the conversation: {}", e.what()), "invalid_request_error",
                     "messages");
    }
    // The template writes the special tokens itself (as transformers' apply_chat_template does).
    prompts.push_back(ctx.tokenizer->encode(text, false).ids);
    params = r;
  }

  auto group = std::make_shared<GenerationGroup>();
  group->kind = kind;
  group->stream = params.stream;
  group->include_usage = params.include_usage;
  group->id = new_id(kind == Kind::kChat ? "chatcmpl" : "cmpl");
  group->model = ctx.name;
  group->created = unix_time();
  group->choices.resize(prompts.size());
  group->remaining = prompts.size();

  const uint64_t seed = params.seed.value_or(std::random_device{}());
  const auto arrival = Clock::now();
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto& ids = prompts[i];
    const int64_t n = static_cast<int64_t>(ids.size());
    if (n == 0) throw ApiError(400, "the prompt is empty after tokenization", "invalid_request_error", "prompt");
    for (int64_t id : ids) {
      if (id < 0 || id >= info.vocab_size) {
        throw ApiError(400, fmt::format("token id {} is out of range for the vocabulary of {}", id, info.vocab_size));
      }
    }
    int64_t max_new = params.max_tokens.value_or(kind == Kind::kCompletion ? 16 : ctx.limits.max_tokens);
    if (ctx.limits.context > 0) {
      if (n >= ctx.limits.context) {
        throw ApiError(400, fmt::format("the prompt has {} tokens but the model's context is {} tokens", n,
                                        ctx.limits.context),
                       "invalid_request_error", kind == Kind::kChat ? "messages" : "prompt", "context_length_exceeded");
      }
      if (n + max_new > ctx.limits.context) {
        if (params.max_tokens) {
          throw ApiError(400, fmt::format("the prompt ({} tokens) plus max_tokens ({}) exceeds the model's context of "
                                          "{} tokens",
                                          n, max_new, ctx.limits.context),
                         "invalid_request_error", "max_tokens", "context_length_exceeded");
        }
        max_new = ctx.limits.context - n;
      }
    }
    auto req = std::make_shared<GenerationRequest>();
    req->prompt = ids;
    req->options.max_new_tokens = max_new;
    req->options.do_sample = params.temperature > 0;
    req->options.temperature = params.temperature > 0 ? params.temperature : 1.0;
    req->options.top_k = params.top_k;
    req->options.top_p = params.top_p;
    req->options.repetition_penalty = params.repetition_penalty;
    req->options.seed = seed + i;
    if (!params.ignore_eos) req->eos = info.eos_token_ids;
    req->arrival = arrival;
    req->deadline = arrival + std::chrono::microseconds(static_cast<int64_t>(ctx.request_timeout_s * 1e6));
    GenerationGroup::Choice& ch = group->choices[i];
    ch.prompt_tokens = n;
    if (ctx.tokenizer) ch.text = std::make_unique<TextStream>(*ctx.tokenizer, params.stop);
    std::weak_ptr<GenerationGroup> weak = group;
    GenerationRequest* self = req.get();  // the lambda lives inside *self: no ownership cycle
    req->on_token = [weak, i, self](int64_t tok) {
      auto g = weak.lock();
      if (!g) self->cancel = true;  // the HTTP side is gone (client disconnected)
      return g ? g->on_token(i, tok) : false;
    };
    req->on_finish = [weak, i](Finish f, int64_t generated, const std::string& msg) {
      if (auto g = weak.lock()) g->on_finish(i, f, generated, msg);
    };
    group->requests.push_back(std::move(req));
  }
  if (kind == Kind::kChat && group->stream) {
    Json first = group->chunk(0, "", nullptr);
    first["choices"][0]["delta"] = Json{{"role", "assistant"}, {"content", ""}};
    group->events.push_back(GenerationGroup::sse_text(first));
  }
  for (auto& req : group->requests) {
    const Admission a = ctx.scheduler->submit(req);
    if (a == Admission::kAccepted) continue;
    cancel(*group);
    if (a == Admission::kQueueFull) {
      ctx.metrics->count_rejected();
      throw ApiError(429, "the server is at capacity (queue full); retry shortly", "rate_limit_exceeded", "",
                     "queue_full");
    }
    throw ApiError(503, "the server is shutting down", "server_error");
  }
  return group;
}

bool is_streaming(const GenerationGroup& group) { return group.stream; }

void cancel(GenerationGroup& group) {
  for (auto& r : group.requests) r->cancel = true;
}

Json wait_response(GenerationGroup& group) {
  std::unique_lock<std::mutex> lock(group.mutex);
  group.cv.wait(lock, [&] { return group.ended; });
  if (group.error) throw *group.error;
  Json choices = Json::array();
  for (size_t i = 0; i < group.choices.size(); ++i) {
    const auto& ch = group.choices[i];
    Json c;
    c["index"] = i;
    if (group.kind == Kind::kChat) {
      c["message"] = Json{{"role", "assistant"}, {"content", ch.output}};
    } else {
      c["text"] = ch.output;
    }
    c["logprobs"] = nullptr;
    c["finish_reason"] = ch.finish_reason;
    choices.push_back(std::move(c));
  }
  return Json{{"id", group.id},
              {"object", group.kind == Kind::kChat ? "chat.completion" : "text_completion"},
              {"created", group.created},
              {"model", group.model},
              {"choices", std::move(choices)},
              {"usage", group.usage()}};
}

bool next_event(GenerationGroup& group, std::string& event, std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(group.mutex);
  group.cv.wait_for(lock, wait, [&] { return !group.events.empty() || group.ended; });
  event.clear();
  while (!group.events.empty()) {  // everything ready goes out in one write
    event += group.events.front();
    group.events.pop_front();
  }
  return !(event.empty() && group.ended);
}

Json run_embeddings(const ModelContext& ctx, const Json& body) {
  const ModelInfo& info = ctx.engine->info();
  EmbeddingsRequest r = parse_embeddings(body, ctx.limits);
  check_model(ctx, r.model);
  if (info.causal_lm) {
    throw ApiError(400, fmt::format("'{}' is a causal LM ({}): /v1/embeddings needs an encoder model such as BERT",
                                    ctx.name, info.architecture));
  }
  auto req = std::make_shared<EmbeddingRequest>();
  int64_t total = 0;
  for (size_t i = 0; i < r.inputs.size(); ++i) {
    auto ids = tokenize(ctx, r.inputs[i], true, "input");
    if (ids.empty()) throw ApiError(400, fmt::format("input {} is empty after tokenization", i), "invalid_request_error", "input");
    if (ctx.limits.context > 0 && static_cast<int64_t>(ids.size()) > ctx.limits.context) {
      throw ApiError(400, fmt::format("input {} has {} tokens but the model accepts at most {}", i, ids.size(),
                                      ctx.limits.context),
                     "invalid_request_error", "input", "context_length_exceeded");
    }
    total += static_cast<int64_t>(ids.size());
    req->inputs.push_back(std::move(ids));
  }
  std::promise<std::vector<std::vector<float>>> done;
  auto result = done.get_future();
  const Pooling pooling = ctx.pooling;
  req->on_done = [&done, pooling](const Tensor& hidden, const std::vector<std::vector<int64_t>>& mask,
                                  const std::string& error) {
    if (!error.empty()) {
      done.set_exception(std::make_exception_ptr(ApiError(500, "embedding failed: " + error, "server_error")));
      return;
    }
    done.set_value(pooling.apply(hidden, mask));
  };
  const Admission a = ctx.scheduler->submit(req);
  if (a == Admission::kQueueFull) {
    ctx.metrics->count_rejected();
    throw ApiError(429, "the server is at capacity (queue full); retry shortly", "rate_limit_exceeded", "", "queue_full");
  }
  if (a == Admission::kShuttingDown) throw ApiError(503, "the server is shutting down", "server_error");
  std::vector<std::vector<float>> vectors = result.get();
  ctx.metrics->count_tokens(total, 0);
  Json data = Json::array();
  for (size_t i = 0; i < vectors.size(); ++i) {
    Json e{{"object", "embedding"}, {"index", i}};
    if (r.base64) {
      e["embedding"] = base64_floats(vectors[i]);
    } else {
      e["embedding"] = vectors[i];
    }
    data.push_back(std::move(e));
  }
  return Json{{"object", "list"},
              {"data", std::move(data)},
              {"model", ctx.name},
              {"usage", Json{{"prompt_tokens", total}, {"total_tokens", total}}}};
}

}  // namespace kpt::serve
