#include "serve/server.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "runtime/engine_access.h"
#include "serve/generation.h"

namespace kpt::serve {

namespace fs = std::filesystem;

namespace {

std::atomic<int> g_signal{0};
void on_signal(int sig) { g_signal = sig; }

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

void send_json(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  if (e.status == 429) res.set_header("Retry-After", "1");
  send_json(res, e.status, e.body());
}

// The model's context window: max_position_embeddings (n_positions for GPT-2) from config.json.
int64_t context_length(const std::string& model_dir, const ModelInfo& info) {
  std::ifstream in(fs::path(model_dir) / "config.json");
  nlohmann::json cfg = nlohmann::json::parse(in, nullptr, false);
  for (const char* key : {"max_position_embeddings", "n_positions", "n_ctx"}) {
    if (cfg.is_object() && cfg.contains(key) && cfg[key].is_number_integer()) return cfg[key].get<int64_t>();
  }
  return info.max_positions;
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

}  // namespace

Contract parse_contract(const std::string& name) {
  if (name == "openai") return Contract::kOpenAI;
  if (name == "sagemaker") return Contract::kSageMaker;
  if (name == "vertex") return Contract::kVertex;
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("unknown contract '{}'; choose openai, sagemaker or vertex", name));
}

void apply_contract_defaults(ServeOptions& o, bool host_given, bool port_given) {
  if (o.contract == Contract::kSageMaker) {
    if (!host_given) o.host = "0.0.0.0";  // SageMaker reaches the container from outside
    if (!port_given) o.port = 8080;
  } else if (o.contract == Contract::kVertex) {
    if (!host_given) o.host = "0.0.0.0";
    if (!port_given) {
      const std::string p = env_or("AIP_HTTP_PORT", "8080");
      char* end = nullptr;
      const long v = std::strtol(p.c_str(), &end, 10);
      if (end == p.c_str() || *end != '\0' || v <= 0 || v > 65535) {
        throw Error(ErrorCode::kInvalidArgument, fmt::format("AIP_HTTP_PORT is '{}', not a port number", p));
      }
      o.port = static_cast<int>(v);
    }
    o.health_route = env_or("AIP_HEALTH_ROUTE", "/health");
    o.predict_route = env_or("AIP_PREDICT_ROUTE", "/predict");
    for (const auto* route : {&o.health_route, &o.predict_route}) {
      if (route->empty() || (*route)[0] != '/') {
        throw Error(ErrorCode::kInvalidArgument, fmt::format("route '{}' must start with '/'", *route));
      }
    }
  }
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  // Compare over the longer length so the time does not reveal a common prefix or the length.
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

namespace {

class Server {
 public:
  explicit Server(const ServeOptions& o) : options_(o) {}

  int run() {
    std::signal(SIGPIPE, SIG_IGN);  // a client that left must not kill the server
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);
    const int threads = options_.http_threads > 0
                            ? options_.http_threads
                            : static_cast<int>(options_.scheduler.max_concurrent + options_.scheduler.max_queue + 8);
    http_.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    http_.set_payload_max_length(options_.max_body_bytes);
    http_.set_read_timeout(30, 0);
    http_.set_write_timeout(30, 0);
    routes();
    if (!http_.bind_to_port(options_.host.c_str(), options_.port)) {
      std::fprintf(stderr, "error: cannot listen on %s:%d (address in use or not allowed)\n", options_.host.c_str(),
                   options_.port);
      return 1;
    }
    std::fprintf(stderr, "kernelpytorch serve: listening on http://%s:%d (model loading...)\n", options_.host.c_str(),
                 options_.port);
    std::thread loader([this] { load(); });
    std::thread watcher([this] { watch(); });
    http_.listen_after_bind();
    stopping_ = true;
    loader.join();
    watcher.join();
    if (scheduler_) scheduler_->shutdown(false);
    return exit_code_;
  }

 private:
  void load() {
    try {
      engine_ = Engine::load(options_.model_dir, options_.engine);
      ModelContext& c = ctx_;
      c.engine = engine_.get();
      c.tokenizer = engine_->tokenizer();
      c.chat_template = ChatTemplate::from_model_dir(options_.model_dir);
      c.pooling = Pooling::from_model_dir(options_.model_dir);
      c.name = options_.served_model_name.empty() ? fs::path(options_.model_dir).filename().string()
                                                  : options_.served_model_name;
      if (c.name.empty()) c.name = fs::path(options_.model_dir).parent_path().filename().string();
      const ModelInfo& info = engine_->info();
      c.limits.max_tokens = options_.max_tokens_limit;
      c.limits.context = context_length(options_.model_dir, info);
      c.limits.vocab_size = info.vocab_size;
      c.request_timeout_s = options_.request_timeout_s;
      SchedulerOptions so = options_.scheduler;
      const bool cuda = engine_->device().rfind("cuda", 0) == 0;
      so.max_decode_rows = options_.max_decode_rows >= 0 ? options_.max_decode_rows
                           : cuda && engine_->effective_level() != Level::kReference ? 8
                                                                                     : 0;
      scheduler_ = std::make_unique<Scheduler>(runtime::engine_session(*engine_), metrics_, so);
      c.scheduler = scheduler_.get();
      c.metrics = &metrics_;
      ready_ = true;
      std::fprintf(stderr,
                   "kernelpytorch serve: ready: '%s' (%s, %s, level %s on %s, context %lld, decode rows per call %s%s%s)\n",
                   c.name.c_str(),
                   info.architecture.c_str(), info.causal_lm ? "generation" : "embeddings",
                   level_name(engine_->effective_level()), engine_->device().c_str(),
                   static_cast<long long>(c.limits.context),
                   so.max_decode_rows > 0 ? std::to_string(so.max_decode_rows).c_str() : "all",
                   c.chat_template ? ", chat template" : "",
                   info.causal_lm ? "" : (", " + c.pooling.describe()).c_str());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: cannot load %s: %s\n", options_.model_dir.c_str(), e.what());
      exit_code_ = 1;
      stop_http();
    }
  }

  // SIGTERM/SIGINT: stop taking requests, let the running ones finish (drain), then stop.
  void watch() {
    while (!stopping_) {
      if (g_signal != 0) {
        std::fprintf(stderr, "kernelpytorch serve: signal %d: draining %lld running and %lld queued requests\n",
                     g_signal.load(), ready_ ? static_cast<long long>(scheduler_->gauges().running) : 0LL,
                     ready_ ? static_cast<long long>(scheduler_->gauges().queue_depth) : 0LL);
        draining_ = true;
        Scheduler* scheduler = ready_.exchange(false) ? scheduler_.get() : nullptr;
        if (scheduler) scheduler->shutdown(true);
        // Streams still writing their last events get a moment before the sockets close.
        while (active_streams_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        stop_http();
        std::fprintf(stderr, "kernelpytorch serve: stopped\n");
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  // stop() is lost when it comes before listen_after_bind() has started: wait for that first.
  void stop_http() {
    while (!http_.is_running() && !stopping_) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    http_.stop();
  }

  bool authorized(const httplib::Request& req) const {
    if (options_.api_key.empty()) return true;
    std::string given = req.get_header_value("Authorization");
    const std::string bearer = "Bearer ";
    if (given.rfind(bearer, 0) == 0) {
      given = given.substr(bearer.size());
    } else {
      given = req.get_header_value("api-key");  // Azure-style clients
    }
    return constant_time_equal(given, options_.api_key);
  }

  bool needs_auth(const std::string& path) const {
    return path.rfind("/v1/", 0) == 0 || path == "/invocations" ||
           (options_.contract == Contract::kVertex && path == options_.predict_route);
  }

  // Runs a JSON POST handler with the checks every API route shares.
  void api(const httplib::Request& req, httplib::Response& res, const char* route,
           const std::function<void(const Json&)>& handle) {
    try {
      if (draining_) throw ApiError(503, "the server is shutting down", "server_error");
      if (!ready_) throw ApiError(503, "the model is still loading; GET /ready says when it is ready", "server_error");
      handle(parse_json_body(req.body));
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const Error& e) {
      send_error(res, ApiError(e.code() == ErrorCode::kInvalidArgument || e.code() == ErrorCode::kOutOfRange ? 400 : 500,
                               e.what(), e.code() == ErrorCode::kInvalidArgument ? "invalid_request_error" : "server_error"));
    } catch (const std::exception& e) {
      send_error(res, ApiError(500, fmt::format("internal error: {}", e.what()), "server_error"));
    }
    metrics_.count_request(route, res.status);
  }

  void generate(const httplib::Request&, httplib::Response& res, Kind kind, const Json& body) {
    auto group = start_generation(ctx_, kind, body);
    if (!is_streaming(*group)) {
      send_json(res, 200, wait_response(*group));
      return;
    }
    ++active_streams_;
    res.status = 200;
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [group](size_t, httplib::DataSink& sink) {
          std::string event;
          if (!next_event(*group, event, std::chrono::milliseconds(100))) {
            sink.done();
            return true;
          }
          if (!event.empty() && !sink.write(event.data(), event.size())) {
            cancel(*group);  // the client is gone: free its sequences at the next step
            return false;
          }
          return true;
        },
        [group, this](bool success) {
          if (!success) cancel(*group);
          --active_streams_;
        });
  }

  void dispatch_invocation(const httplib::Request& req, httplib::Response& res, const Json& given) {
    if (!given.is_object()) throw ApiError(400, "the request body must be a JSON object");
    Json body = given;  // one model per endpoint: 'model' may be left out
    if (!body.contains("model")) body["model"] = ctx_.name;
    if (body.contains("messages")) {
      generate(req, res, Kind::kChat, body);
    } else if (body.contains("prompt")) {
      generate(req, res, Kind::kCompletion, body);
    } else if (body.contains("input")) {
      send_json(res, 200, run_embeddings(ctx_, body));
    } else {
      throw ApiError(400, "cannot tell the request kind: give 'messages' (chat), 'prompt' (completion) or 'input' "
                          "(embeddings)");
    }
  }

  // Vertex AI: {"instances": [request, ...]} -> {"predictions": [response, ...]}, no streaming.
  void vertex_predict(const Json& body, httplib::Response& res) {
    if (!body.is_object() || !body.contains("instances") || !body["instances"].is_array()) {
      throw ApiError(400, "a Vertex AI prediction request is {\"instances\": [...]}", "invalid_request_error", "instances");
    }
    std::vector<std::shared_ptr<GenerationGroup>> groups;
    Json predictions = Json::array();
    std::vector<Json> bodies;
    for (Json inst : body["instances"]) {
      if (!inst.is_object()) throw ApiError(400, "every instance must be a JSON object", "invalid_request_error", "instances");
      if (!inst.contains("model")) inst["model"] = ctx_.name;
      inst["stream"] = false;
      bodies.push_back(std::move(inst));
    }
    for (const auto& inst : bodies) {
      if (inst.contains("input")) {
        predictions.push_back(run_embeddings(ctx_, inst));
      } else {
        auto g = start_generation(ctx_, inst.contains("messages") ? Kind::kChat : Kind::kCompletion, inst);
        predictions.push_back(wait_response(*g));
      }
    }
    send_json(res, 200, Json{{"predictions", std::move(predictions)}});
  }

  httplib::Server::Handler ready_handler() {
    return [this](const httplib::Request&, httplib::Response& res) {
      if (ready_) {
        send_json(res, 200, Json{{"status", "ready"}, {"model", ctx_.name}});
      } else {
        send_json(res, 503, Json{{"status", draining_ ? "draining" : "loading"}});
      }
    };
  }

  void routes() {
    http_.set_logger([](const httplib::Request& req, const httplib::Response& res) {
      std::fprintf(stderr, "%s %s %d\n", req.method.c_str(), req.path.c_str(), res.status);
    });
    http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (needs_auth(req.path) && !authorized(req)) {
        send_error(res, ApiError(401, "invalid or missing API key (send 'Authorization: Bearer KEY')",
                                 "invalid_request_error", "", "invalid_api_key"));
        metrics_.count_request("auth", 401);
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http_.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      if (res.status == 404) {
        send_error(res, ApiError(404, fmt::format("no route {} {}", req.method, req.path), "invalid_request_error", "",
                                 "not_found"));
      } else if (res.status == 413) {
        send_error(res, ApiError(413, "the request body is too large", "invalid_request_error"));
      } else if (res.status >= 400) {
        send_error(res, ApiError(res.status, fmt::format("HTTP {}", res.status), "invalid_request_error"));
      }
    });
    http_.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_error(res, ApiError(500, "internal error: " + what, "server_error"));
    });

    // Vertex AI sends traffic once its health route answers 200: there it means "ready".
    if (options_.contract == Contract::kVertex) http_.Get(options_.health_route, ready_handler());
    http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, Json{{"status", draining_ ? "draining" : "ok"}});
    });
    http_.Get("/ready", ready_handler());
    if (options_.contract == Contract::kSageMaker) http_.Get("/ping", ready_handler());
    http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics_.render(ready_ ? scheduler_->gauges() : SchedulerGauges{}, ready_),
                      "text/plain; version=0.0.4");
    });
    auto model_entry = [this] {
      return Json{{"id", ctx_.name}, {"object", "model"}, {"created", started_}, {"owned_by", "kernelpytorch"}};
    };
    http_.Get("/v1/models", [this, model_entry](const httplib::Request&, httplib::Response& res) {
      if (!ready_) return send_error(res, ApiError(503, "the model is still loading", "server_error"));
      send_json(res, 200, Json{{"object", "list"}, {"data", Json::array({model_entry()})}});
    });
    http_.Get(R"(/v1/models/(.+))", [this, model_entry](const httplib::Request& req, httplib::Response& res) {
      if (!ready_) return send_error(res, ApiError(503, "the model is still loading", "server_error"));
      if (req.matches[1] != ctx_.name) {
        return send_error(res, ApiError(404, fmt::format("the model '{}' does not exist", req.matches[1].str()),
                                        "invalid_request_error", "model", "model_not_found"));
      }
      send_json(res, 200, model_entry());
    });
    http_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      api(req, res, "/v1/completions", [&](const Json& body) { generate(req, res, Kind::kCompletion, body); });
    });
    http_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      api(req, res, "/v1/chat/completions", [&](const Json& body) { generate(req, res, Kind::kChat, body); });
    });
    http_.Post("/v1/embeddings", [this](const httplib::Request& req, httplib::Response& res) {
      api(req, res, "/v1/embeddings", [&](const Json& body) { send_json(res, 200, run_embeddings(ctx_, body)); });
    });
    if (options_.contract == Contract::kSageMaker) {
      http_.Post("/invocations", [this](const httplib::Request& req, httplib::Response& res) {
        api(req, res, "/invocations", [&](const Json& body) { dispatch_invocation(req, res, body); });
      });
    }
    if (options_.contract == Contract::kVertex) {
      http_.Post(options_.predict_route, [this](const httplib::Request& req, httplib::Response& res) {
        api(req, res, "predict", [&](const Json& body) { vertex_predict(body, res); });
      });
    }
  }

  ServeOptions options_;
  httplib::Server http_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Scheduler> scheduler_;
  Metrics metrics_;
  ModelContext ctx_;
  std::atomic<bool> ready_{false}, draining_{false}, stopping_{false};
  std::atomic<int> active_streams_{0};
  int exit_code_ = 0;
  int64_t started_ = unix_time();
};

}  // namespace

int serve(const ServeOptions& options) {
  Server server(options);
  return server.run();
}

}  // namespace kpt::serve
