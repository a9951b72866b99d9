#include "bench/result.h"

#include <chrono>
#include <ctime>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "bench/stats.h"
#include "kpt/status.h"

namespace kpt::bench {

namespace {
constexpr const char* kSchema = "kernelpytorch.benchmark/1";

[[noreturn]] void bad(const std::string& source, const std::string& path, const std::string& what) {
  throw Error(ErrorCode::kInvalidFile, fmt::format("{}: {} {}", source, path, what));
}

const nlohmann::json& field(const nlohmann::json& obj, const std::string& key,
                            const std::string& source, const std::string& path) {
  if (!obj.is_object()) bad(source, path, "must be an object");
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) bad(source, path + "." + key, "is missing");
  return *it;
}

std::string get_string(const nlohmann::json& obj, const std::string& key, const std::string& source,
                       const std::string& path) {
  const auto& v = field(obj, key, source, path);
  if (!v.is_string())
    bad(source, path + "." + key, fmt::format("must be a string, got {}", v.type_name()));
  return v.get<std::string>();
}

int64_t get_int(const nlohmann::json& obj, const std::string& key, const std::string& source,
                const std::string& path) {
  const auto& v = field(obj, key, source, path);
  if (!v.is_number_integer())
    bad(source, path + "." + key, fmt::format("must be an integer, got {}", v.dump()));
  return v.get<int64_t>();
}
}  // namespace

double Metric::median() const {
  return samples.empty() ? 0 : bench::median(samples);
}
double Metric::p90() const {
  return samples.empty() ? 0 : percentile(samples, 90);
}
double Metric::mean() const {
  return bench::mean(samples);
}

std::string WorkloadSpec::id() const {
  const std::string shape = kind == "generate"
                                ? fmt::format("b{}-p{}-n{}", batch, prompt_len, new_tokens)
                                : fmt::format("b{}-s{}", batch, seq);
  return fmt::format("{}/{}/{}/{}/{}", name, kind, shape, level, device);
}

nlohmann::json to_json(const WorkloadResult& w) {
  const WorkloadSpec& s = w.spec;
  nlohmann::json j;
  j["id"] = s.id();
  j["name"] = s.name;
  j["model_dir"] = s.model_dir;
  j["weights"] = s.weights;
  if (!s.random_config.empty()) j["config"] = s.random_config;
  j["kind"] = s.kind;
  j["level"] = s.level;
  j["engine"] = s.peer.empty() ? "kernelpytorch" : s.peer;
  if (!s.peer.empty()) j["peer"] = w.peer_info;
  j["device"] = s.device;
  j["device_used"] = w.device_used;
  j["batch"] = s.batch;
  if (s.kind == "generate") {
    j["prompt_len"] = s.prompt_len;
    j["new_tokens"] = s.new_tokens;
  } else {
    j["seq"] = s.seq;
  }
  j["warmup"] = s.warmup;
  j["repeat"] = s.repeat;
  j["threads"] = s.threads;
  j["n_parameters"] = w.n_parameters;
  j["load_average"] = {w.load_average[0], w.load_average[1]};
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [name, m] : w.metrics) {
    metrics[name] = {{"unit", m.unit},       {"better", m.higher_is_better ? "higher" : "lower"},
                     {"median", m.median()}, {"p90", m.p90()},
                     {"mean", m.mean()},     {"n", m.samples.size()},
                     {"samples", m.samples}};
  }
  j["metrics"] = metrics;
  return j;
}

nlohmann::json to_json(const BenchResult& r) {
  nlohmann::json j;
  j["schema"] = kSchema;
  j["created_at"] = r.created_at;
  j["environment"] = r.environment;
  j["workloads"] = nlohmann::json::array();
  for (const auto& w : r.workloads) j["workloads"].push_back(to_json(w));
  if (!r.skipped.empty()) j["skipped"] = r.skipped;
  return j;
}

WorkloadResult workload_from_json(const nlohmann::json& j, const std::string& source) {
  WorkloadResult w;
  const std::string path = "workload";
  WorkloadSpec& s = w.spec;
  s.name = get_string(j, "name", source, path);
  s.kind = get_string(j, "kind", source, path);
  if (s.kind != "forward" && s.kind != "generate") {
    bad(source, path + ".kind",
        fmt::format("must be \"forward\" or \"generate\", got \"{}\"", s.kind));
  }
  s.level = get_string(j, "level", source, path);
  s.device = get_string(j, "device", source, path);
  if (const std::string engine = j.value("engine", "kernelpytorch"); engine != "kernelpytorch") {
    s.peer = engine;
    w.peer_info = j.value("peer", nlohmann::json::object());
  }
  s.batch = get_int(j, "batch", source, path);
  if (s.kind == "generate") {
    s.prompt_len = get_int(j, "prompt_len", source, path);
    s.new_tokens = get_int(j, "new_tokens", source, path);
  } else {
    s.seq = get_int(j, "seq", source, path);
  }
  s.model_dir = j.value("model_dir", "");
  s.weights = j.value("weights", "real");
  s.random_config = j.value("config", "");
  s.warmup = j.value("warmup", 0);
  s.repeat = j.value("repeat", 0);
  s.threads = j.value("threads", 0);
  w.device_used = j.value("device_used", s.device);
  w.n_parameters = j.value("n_parameters", int64_t{0});
  if (auto la = j.find("load_average"); la != j.end() && la->is_array() && la->size() == 2 &&
                                        (*la)[0].is_number() && (*la)[1].is_number()) {
    w.load_average[0] = (*la)[0].get<double>();
    w.load_average[1] = (*la)[1].get<double>();
  }
  const std::string mpath = fmt::format("workload[{}].metrics", s.id());
  const auto& metrics = field(j, "metrics", source, path);
  if (!metrics.is_object()) bad(source, mpath, "must be an object of metrics");
  for (const auto& [name, mj] : metrics.items()) {
    const std::string p = mpath + "." + name;
    Metric m;
    m.unit = get_string(mj, "unit", source, p);
    const std::string better = mj.value("better", "lower");
    if (better != "lower" && better != "higher")
      bad(source, p + ".better", "must be \"lower\" or \"higher\"");
    m.higher_is_better = better == "higher";
    const auto& samples = field(mj, "samples", source, p);
    if (!samples.is_array() || samples.empty())
      bad(source, p + ".samples", "must be a non-empty array of numbers");
    for (const auto& v : samples) {
      if (!v.is_number())
        bad(source, p + ".samples", fmt::format("must hold numbers, found {}", v.dump()));
      m.samples.push_back(v.get<double>());
    }
    w.metrics[name] = std::move(m);
  }
  return w;
}

BenchResult result_from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object())
    bad(source, "the document", "must be a JSON object (a kernelpytorch benchmark result)");
  const std::string schema = j.value("schema", "");
  if (schema != kSchema) {
    bad(source, "schema",
        fmt::format("must be \"{}\", got \"{}\" (is this a benchmark result?)", kSchema, schema));
  }
  BenchResult r;
  r.created_at = j.value("created_at", "");
  r.environment = j.value("environment", nlohmann::json::object());
  const auto& ws = field(j, "workloads", source, "result");
  if (!ws.is_array()) bad(source, "workloads", "must be an array");
  for (const auto& w : ws) r.workloads.push_back(workload_from_json(w, source));
  if (auto sk = j.find("skipped"); sk != j.end() && sk->is_array()) {
    for (const auto& v : *sk) {
      if (v.is_string()) r.skipped.push_back(v.get<std::string>());
    }
  }
  return r;
}

BenchResult load_result(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error(ErrorCode::kNotFound, fmt::format("cannot open benchmark result {}", path));
  std::stringstream ss;
  ss << f.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(ErrorCode::kInvalidFile, fmt::format("{} is not valid JSON: {}", path, e.what()));
  }
  return result_from_json(j, path);
}

void save_result(const BenchResult& r, const std::string& path) {
  std::ofstream f(path);
  if (!f) throw Error(ErrorCode::kInvalidArgument, fmt::format("cannot write {}", path));
  f << to_json(r).dump(1) << "\n";
  if (!f) throw Error(ErrorCode::kInvalidArgument, fmt::format("error while writing {}", path));
}

std::string utc_now_iso8601() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace kpt::bench
