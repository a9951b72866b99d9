#include "serve/protocol.h"

#include <chrono>
#include <cmath>
#include <random>

#include <fmt/format.h>

namespace kpt::serve {

ApiError::ApiError(int status_, std::string message, std::string type_, std::string param_, std::string code_)
    : std::runtime_error(std::move(message)),
      status(status_),
      type(std::move(type_)),
      param(std::move(param_)),
      code(std::move(code_)) {}

Json ApiError::body() const {
  Json e;
  e["message"] = what();
  e["type"] = type;
  e["param"] = param.empty() ? Json(nullptr) : Json(param);
  e["code"] = code.empty() ? Json(nullptr) : Json(code);
  return Json{{"error", e}};
}

namespace {

const char* type_name(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::boolean: return "boolean";
    case Json::value_t::string: return "string";
    case Json::value_t::array: return "array";
    case Json::value_t::object: return "object";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "integer";
    case Json::value_t::number_float: return "number";
    default: return "value";
  }
}

ApiError bad(const std::string& param, const std::string& message) { return ApiError(400, message, "invalid_request_error", param); }

const Json* field(const Json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

double number(const Json& body, const char* key, double fallback, double lo, double hi) {
  const Json* v = field(body, key);
  if (!v) return fallback;
  if (!v->is_number()) throw bad(key, fmt::format("'{}' must be a number, got {}", key, type_name(*v)));
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi) {
    throw bad(key, fmt::format("'{}' is {} but must be between {} and {}", key, x, lo, hi));
  }
  return x;
}

std::optional<int64_t> integer(const Json& body, const char* key, int64_t lo, int64_t hi) {
  const Json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) throw bad(key, fmt::format("'{}' must be an integer, got {}", key, type_name(*v)));
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    throw bad(key, fmt::format("'{}' is out of range", key));
  }
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi) throw bad(key, fmt::format("'{}' is {} but must be between {} and {}", key, x, lo, hi));
  return x;
}

bool boolean(const Json& body, const char* key, bool fallback) {
  const Json* v = field(body, key);
  if (!v) return fallback;
  if (!v->is_boolean()) throw bad(key, fmt::format("'{}' must be a boolean, got {}", key, type_name(*v)));
  return v->get<bool>();
}

std::string model_name(const Json& body) {
  const Json* v = field(body, "model");
  if (!v) throw bad("model", "'model' is required (GET /v1/models lists the served model)");
  if (!v->is_string()) throw bad("model", fmt::format("'model' must be a string, got {}", type_name(*v)));
  return v->get<std::string>();
}

std::vector<int64_t> token_ids(const Json& arr, const char* key, const Limits& limits) {
  std::vector<int64_t> ids;
  for (const auto& t : arr) {
    if (!t.is_number_integer()) throw bad(key, fmt::format("'{}' token ids must be integers, got {}", key, type_name(t)));
    const int64_t id = t.get<int64_t>();
    if (id < 0 || (limits.vocab_size > 0 && id >= limits.vocab_size)) {
      throw bad(key, fmt::format("token id {} in '{}' is out of range for the vocabulary of {}", id, key,
                                 limits.vocab_size));
    }
    ids.push_back(id);
  }
  return ids;
}

// string | [string, ...] | [int, ...] | [[int, ...], ...]
std::vector<Prompt> prompts(const Json& body, const char* key, const Limits& limits) {
  const Json* v = field(body, key);
  if (!v) throw bad(key, fmt::format("'{}' is required", key));
  std::vector<Prompt> out;
  if (v->is_string()) {
    out.emplace_back(v->get<std::string>());
  } else if (v->is_array() && !v->empty() && (*v)[0].is_number()) {
    out.emplace_back(token_ids(*v, key, limits));
  } else if (v->is_array() && !v->empty()) {
    for (const auto& item : *v) {
      if (item.is_string()) {
        out.emplace_back(item.get<std::string>());
      } else if (item.is_array()) {
        out.emplace_back(token_ids(item, key, limits));
      } else {
        throw bad(key, fmt::format("'{}' items must be strings or arrays of token ids, got {}", key, type_name(item)));
      }
    }
  } else if (v->is_array()) {
    throw bad(key, fmt::format("'{}' is an empty array", key));
  } else {
    throw bad(key, fmt::format("'{}' must be a string or an array, got {}", key, type_name(*v)));
  }
  for (const auto& p : out) {
    if (std::holds_alternative<std::vector<int64_t>>(p) && std::get<std::vector<int64_t>>(p).empty()) {
      throw bad(key, fmt::format("'{}' has an empty token list", key));
    }
  }
  return out;
}

void refuse_unsupported(const Json& body) {
  if (auto n = integer(body, "n", 1, 128); n && *n != 1) throw bad("n", "'n' must be 1 (one choice per prompt)");
  if (auto b = integer(body, "best_of", 1, 128); b && *b != 1) throw bad("best_of", "'best_of' must be 1");
  for (const char* key : {"presence_penalty", "frequency_penalty"}) {
    if (number(body, key, 0.0, -2.0, 2.0) != 0.0) {
      throw bad(key, fmt::format("'{}' is not supported; use 'repetition_penalty' (transformers semantics)", key));
    }
  }
  if (const Json* lp = field(body, "logprobs"); lp && !(lp->is_boolean() && !lp->get<bool>())) {
    throw bad("logprobs", "'logprobs' is not supported");
  }
  if (const Json* lb = field(body, "logit_bias"); lb && !(lb->is_object() && lb->empty())) {
    throw bad("logit_bias", "'logit_bias' is not supported");
  }
  if (boolean(body, "echo", false)) throw bad("echo", "'echo' is not supported");
  if (const Json* rf = field(body, "response_format")) {
    if (!rf->is_object() || rf->value("type", "text") != "text") {
      throw bad("response_format", "only response_format {\"type\": \"text\"} is supported");
    }
  }
  if (const Json* tools = field(body, "tool_choice"); tools && !(tools->is_string() && tools->get<std::string>() != "required")) {
    throw bad("tool_choice", "'tool_choice' other than \"auto\"/\"none\" is not supported");
  }
}

void parse_sampling(const Json& body, const Limits& limits, SamplingRequest& r, const char* max_tokens_key) {
  if (!body.is_object()) throw bad("", fmt::format("the request body must be a JSON object, got {}", type_name(body)));
  r.model = model_name(body);
  refuse_unsupported(body);
  r.max_tokens = integer(body, max_tokens_key, 1, limits.max_tokens);
  if (!r.max_tokens && std::string(max_tokens_key) != "max_tokens") r.max_tokens = integer(body, "max_tokens", 1, limits.max_tokens);
  r.temperature = number(body, "temperature", 1.0, 0.0, 2.0);
  r.top_p = number(body, "top_p", 1.0, 0.0, 1.0);
  if (r.top_p == 0.0) throw bad("top_p", "'top_p' must be greater than 0");
  r.top_k = integer(body, "top_k", -1, limits.vocab_size > 0 ? limits.vocab_size : INT64_MAX).value_or(0);
  if (r.top_k < 0) r.top_k = 0;  // -1 means off, as in other OpenAI-compatible servers
  r.repetition_penalty = number(body, "repetition_penalty", 1.0, 0.01, 10.0);
  if (const Json* s = field(body, "seed")) {
    if (!s->is_number_integer()) throw bad("seed", fmt::format("'seed' must be an integer, got {}", type_name(*s)));
    r.seed = s->is_number_unsigned() ? s->get<uint64_t>() : static_cast<uint64_t>(s->get<int64_t>());
  }
  if (const Json* s = field(body, "stop")) {
    if (s->is_string()) {
      r.stop.push_back(s->get<std::string>());
    } else if (s->is_array()) {
      if (s->size() > 16) throw bad("stop", fmt::format("'stop' has {} sequences; at most 16", s->size()));
      for (const auto& item : *s) {
        if (!item.is_string()) throw bad("stop", fmt::format("'stop' items must be strings, got {}", type_name(item)));
        r.stop.push_back(item.get<std::string>());
      }
    } else {
      throw bad("stop", fmt::format("'stop' must be a string or an array of strings, got {}", type_name(*s)));
    }
    for (const auto& s1 : r.stop) {
      if (s1.empty()) throw bad("stop", "'stop' sequences must not be empty");
    }
  }
  r.stream = boolean(body, "stream", false);
  r.ignore_eos = boolean(body, "ignore_eos", false);
  if (const Json* so = field(body, "stream_options")) {
    if (!so->is_object()) throw bad("stream_options", "'stream_options' must be an object");
    r.include_usage = boolean(*so, "include_usage", false);
  }
}

}  // namespace

Json parse_json_body(const std::string& body) {
  if (body.empty()) throw bad("", "the request body is empty; send a JSON object");
  try {
    return Json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    throw bad("", fmt::format("the request body is not valid JSON (byte {}): {}", e.byte, e.what()));
  }
}

CompletionRequest parse_completion(const Json& body, const Limits& limits) {
  CompletionRequest r;
  parse_sampling(body, limits, r, "max_tokens");
  r.prompts = prompts(body, "prompt", limits);
  if (r.prompts.size() > 64) throw bad("prompt", fmt::format("'prompt' has {} prompts; at most 64", r.prompts.size()));
  return r;
}

ChatRequest parse_chat(const Json& body, const Limits& limits) {
  ChatRequest r;
  parse_sampling(body, limits, r, "max_completion_tokens");
  const Json* m = field(body, "messages");
  if (!m) throw bad("messages", "'messages' is required");
  if (!m->is_array() || m->empty()) throw bad("messages", "'messages' must be a non-empty array");
  for (size_t i = 0; i < m->size(); ++i) {
    const Json& msg = (*m)[i];
    const std::string where = fmt::format("messages[{}]", i);
    if (!msg.is_object()) throw bad(where, fmt::format("'{}' must be an object, got {}", where, type_name(msg)));
    const Json* role = field(msg, "role");
    if (!role || !role->is_string()) throw bad(where + ".role", fmt::format("'{}.role' must be a string", where));
    const Json* content = field(msg, "content");
    if (content && !content->is_string() && !content->is_array()) {
      throw bad(where + ".content", fmt::format("'{}.content' must be a string or an array of parts, got {}", where,
                                                type_name(*content)));
    }
    if (content && content->is_array()) {
      for (const auto& part : *content) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string()) {
          throw bad(where + ".content", fmt::format("'{}.content' parts must be {{\"type\": \"text\", \"text\": ...}} "
                                                    "(only text is supported)",
                                                    where));
        }
      }
    }
  }
  r.messages = *m;
  // OpenAI clients send "content": null on assistant messages that only call tools; templates
  // (Qwen's among them) concatenate content, so give them an empty string there.
  for (auto& msg : r.messages) {
    if (msg.contains("tool_calls") && (!msg.contains("content") || msg["content"].is_null())) msg["content"] = "";
  }
  // Variables some templates read: tools, documents; chat_template_kwargs adds any others.
  for (const char* key : {"tools", "documents"}) {
    if (const Json* v = field(body, key)) r.template_extra[key] = *v;
  }
  if (const Json* kw = field(body, "chat_template_kwargs")) {
    if (!kw->is_object()) throw bad("chat_template_kwargs", "'chat_template_kwargs' must be an object");
    for (const auto& [k, v] : kw->items()) r.template_extra[k] = v;
  }
  return r;
}

EmbeddingsRequest parse_embeddings(const Json& body, const Limits& limits) {
  if (!body.is_object()) throw bad("", fmt::format("the request body must be a JSON object, got {}", type_name(body)));
  EmbeddingsRequest r;
  r.model = model_name(body);
  r.inputs = prompts(body, "input", limits);
  if (r.inputs.size() > 2048) throw bad("input", fmt::format("'input' has {} items; at most 2048", r.inputs.size()));
  for (const auto& p : r.inputs) {
    if (std::holds_alternative<std::string>(p) && std::get<std::string>(p).empty()) {
      throw bad("input", "'input' must not contain empty strings");
    }
  }
  if (const Json* f = field(body, "encoding_format")) {
    if (!f->is_string() || (*f != "float" && *f != "base64")) {
      throw bad("encoding_format", "'encoding_format' must be \"float\" or \"base64\"");
    }
    r.base64 = *f == "base64";
  }
  if (field(body, "dimensions")) throw bad("dimensions", "'dimensions' is not supported (the model's size is used)");
  return r;
}

std::string new_id(const std::string& prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}-{:016x}{:08x}", prefix, rng(), static_cast<uint32_t>(rng()));
}

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Json usage_json(int64_t prompt_tokens, int64_t completion_tokens) {
  return Json{{"prompt_tokens", prompt_tokens},
              {"completion_tokens", completion_tokens},
              {"total_tokens", prompt_tokens + completion_tokens}};
}

std::string base64_floats(const std::vector<float>& values) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* bytes = reinterpret_cast<const unsigned char*>(values.data());  // x86: little-endian
  const size_t n = values.size() * sizeof(float);
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t b0 = bytes[i], b1 = i + 1 < n ? bytes[i + 1] : 0, b2 = i + 2 < n ? bytes[i + 2] : 0;
    const uint32_t v = (b0 << 16) | (b1 << 8) | b2;
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += i + 1 < n ? table[(v >> 6) & 63] : '=';
    out += i + 2 < n ? table[v & 63] : '=';
  }
  return out;
}

std::string sse(const Json& event) { return "data: " + event.dump() + "\n\n"; }

}  // namespace kpt::serve
