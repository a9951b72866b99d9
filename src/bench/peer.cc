#include "bench/peer.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/random_model.h"
#include "kpt/status.h"

#ifndef KPT_SOURCE_DIR
#define KPT_SOURCE_DIR "."
#endif

extern char** environ;

namespace kpt::bench {

namespace fs = std::filesystem;

namespace {

// Reason codes of peer.py's error event that mean "this peer cannot run here", not "it broke".
bool is_unavailable(const std::string& reason) {
  return reason == "not_installed" || reason == "unsupported";
}

std::string tail_of_file(const std::string& path, size_t max_chars) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  if (s.size() > max_chars) s = "..." + s.substr(s.size() - max_chars);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

int64_t config_vocab(const std::string& model_dir) {
  std::ifstream f(model_dir + "/config.json");
  if (!f) throw Error(ErrorCode::kNotFound, fmt::format("{}/config.json not found", model_dir));
  const auto c = nlohmann::json::parse(f, nullptr, false);
  if (c.is_discarded() || !c.contains("vocab_size") || !c["vocab_size"].is_number_integer())
    throw Error(ErrorCode::kInvalidFile,
                fmt::format("{}/config.json: vocab_size missing or not an integer", model_dir));
  return c["vocab_size"].get<int64_t>();
}

}  // namespace

const std::vector<std::string>& known_peers() {
  static const std::vector<std::string> peers = {"pytorch", "torch-compile", "onnxruntime",
                                                 "llamacpp"};
  return peers;
}

std::string find_peer_script() {
  std::vector<std::string> tried;
  if (const char* env = std::getenv("KPT_PEER_SCRIPT"); env && *env) tried.emplace_back(env);
  tried.emplace_back("benchmarks/peers/peer.py");
  tried.push_back(std::string(KPT_SOURCE_DIR) + "/benchmarks/peers/peer.py");
  for (const auto& p : tried) {
    if (fs::is_regular_file(p)) return p;
  }
  std::string list;
  for (const auto& t : tried) list += "\n  " + t;
  throw PeerUnavailable(
      fmt::format("the peer runner benchmarks/peers/peer.py was not found; looked at:{}", list));
}

struct PeerRunner::Impl {
  WorkloadResult r;
  Progress progress;
  std::string label;
  int total = 0;
  pid_t pid = -1;
  FILE* to_child = nullptr;
  FILE* from_child = nullptr;
  std::string stderr_path;
  int threads = 1;
  Metric latency, seq_s, tok_s, ttft, itl, cpu_share;

  Impl() {
    auto init = [](Metric& m, const char* unit, bool higher) {
      m.unit = unit;
      m.higher_is_better = higher;
    };
    init(latency, "ms", false);
    init(seq_s, "seq/s", true);
    init(tok_s, "tokens/s", true);
    init(ttft, "ms", false);
    init(itl, "ms", false);
    init(cpu_share, "fraction", true);
  }

  void start(const std::string& script) {
    // A peer that dies must surface as an error from send(), not kill the harness with SIGPIPE.
    // (kpt_bench runs inside the CLI, which writes to no other pipe it could lose this way.)
    std::signal(SIGPIPE, SIG_IGN);
    char tmpl[] = "/tmp/kpt-peer-stderr-XXXXXX";
    const int err_fd = mkstemp(tmpl);
    if (err_fd < 0)
      throw Error(ErrorCode::kIo, "cannot create a temporary file for the peer's stderr");
    stderr_path = tmpl;
    int in_pipe[2], out_pipe[2];  // in: parent -> child stdin; out: child stdout -> parent
    if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0)
      throw Error(ErrorCode::kIo, "pipe() failed while starting a peer");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_pipe[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO);
    const char* py_env = std::getenv("KPT_PYTHON");
    const std::string python = py_env && *py_env ? py_env : "python3";
    std::vector<std::string> args = {python, script};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = posix_spawnp(&pid, python.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_fd);
    if (rc != 0) {
      close(in_pipe[1]);
      close(out_pipe[0]);
      pid = -1;
      throw PeerUnavailable(
          fmt::format("cannot start {} (set KPT_PYTHON): {}", python, std::strerror(rc)));
    }
    to_child = fdopen(in_pipe[1], "w");
    from_child = fdopen(out_pipe[0], "r");
  }

  void send(const nlohmann::json& j) {
    const std::string line = j.dump() + "\n";
    if (std::fwrite(line.data(), 1, line.size(), to_child) != line.size() ||
        std::fflush(to_child) != 0)
      fail("the peer process stopped reading its requests");
  }

  [[noreturn]] void fail(const std::string& what) {
    const std::string err = tail_of_file(stderr_path, 2000);
    throw Error(ErrorCode::kUnsupported, fmt::format("peer {}: {}{}", r.spec.peer, what,
                                                     err.empty() ? "" : "; its stderr:\n" + err));
  }

  // The next protocol line; lines that are not JSON objects (stray prints) are skipped.
  nlohmann::json receive() {
    std::string line;
    for (;;) {
      line.clear();
      int c = 0;
      while ((c = std::fgetc(from_child)) != EOF && c != '\n') line.push_back(static_cast<char>(c));
      if (c == EOF && line.empty()) fail("the peer process exited before answering");
      if (line.empty() || line.front() != '{') continue;
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.contains("event")) continue;
      if (j["event"] == "error") {
        const std::string reason = j.value("reason", "failed");
        const std::string msg = j.value("message", "unknown error");
        if (is_unavailable(reason)) throw PeerUnavailable(msg);
        fail(msg);
      }
      return j;
    }
  }

  void stop() {
    if (to_child) std::fclose(to_child);
    if (from_child) std::fclose(from_child);
    to_child = from_child = nullptr;
    if (pid > 0) {
      int status = 0;
      // peer.py exits on EOF; a wedged one is killed rather than waited on forever.
      for (int i = 0; i < 50 && waitpid(pid, &status, WNOHANG) == 0; ++i) usleep(100000);
      if (waitpid(pid, &status, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
      }
      pid = -1;
    }
    if (!stderr_path.empty()) std::remove(stderr_path.c_str());
    stderr_path.clear();
  }
};

PeerRunner::PeerRunner(const WorkloadSpec& spec, const Progress& progress)
    : impl_(std::make_unique<Impl>()) {
  check_spec(spec);
  Impl& m = *impl_;
  m.r.spec = spec;
  m.progress = progress;
  m.total = spec.warmup + spec.repeat + 1;
  m.label = spec.id();
  bool known = false;
  for (const auto& p : known_peers()) known = known || p == spec.peer;
  if (!known) {
    std::string list;
    for (const auto& p : known_peers()) list += (list.empty() ? "" : ", ") + p;
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("unknown peer '{}' (known: {})", spec.peer, list));
  }
  if (progress) progress(0, m.total, m.label + " (starting peer)");
  if (m.r.spec.model_dir.empty()) m.r.spec.model_dir = cached_random_model(m.r.spec.random_config);
  const int64_t vocab = config_vocab(m.r.spec.model_dir);
  const int64_t cols = spec.kind == "forward" ? spec.seq : spec.prompt_len;
  nlohmann::json load = {{"cmd", "load"},
                         {"peer", spec.peer},
                         {"model_dir", fs::absolute(m.r.spec.model_dir).string()},
                         {"kind", spec.kind},
                         {"device", spec.device},
                         {"threads", spec.threads},
                         {"new_tokens", spec.new_tokens},
                         {"input_ids", workload_ids(spec.batch, cols, vocab)}};
  m.start(find_peer_script());
  try {
    m.send(load);
    const auto ready = m.receive();
    if (ready.value("event", "") != "ready") m.fail("expected a ready event, got " + ready.dump());
    m.r.peer_info = ready.value("info", nlohmann::json::object());
    m.r.device_used = ready.value("device", spec.device);
    m.r.n_parameters = ready.value("n_parameters", int64_t{0});
    m.threads = std::max(1, ready.value("threads", 1));
    Metric load_ms;
    load_ms.unit = "ms";
    load_ms.samples.push_back(ready.value("load_ms", 0.0));
    m.r.metrics["load_ms"] = load_ms;
  } catch (const Error& e) {
    // A peer that breaks while loading (an exporter or compiler failure in its library) is
    // reported and left out like a missing one: one peer must not sink a whole suite.
    m.stop();
    throw PeerUnavailable(std::string("failed to load: ") + e.what());
  } catch (...) {
    m.stop();
    throw;
  }
  if (progress) progress(1, m.total, m.label);
  m.r.load_average[0] = load_average_1m();
}

PeerRunner::~PeerRunner() {
  impl_->stop();
}

int PeerRunner::repetitions() const {
  return impl_->r.spec.warmup + impl_->r.spec.repeat;
}

void PeerRunner::run_repetition(int i) {
  Impl& m = *impl_;
  const WorkloadSpec& spec = m.r.spec;
  m.send({{"cmd", "run"}});
  const auto rep = m.receive();
  if (rep.value("event", "") != "rep") m.fail("expected a rep event, got " + rep.dump());
  if (m.progress) m.progress(i + 2, m.total, m.label);
  if (i < spec.warmup) return;
  const double ms = rep.value("latency_ms", 0.0);
  if (!(ms > 0)) m.fail("reported a non-positive latency: " + rep.dump());
  m.latency.samples.push_back(ms);
  m.cpu_share.samples.push_back(rep.value("cpu_s", 0.0) / (ms / 1e3 * m.threads));
  if (spec.kind == "forward") {
    m.seq_s.samples.push_back(static_cast<double>(spec.batch) / (ms / 1e3));
    m.tok_s.samples.push_back(static_cast<double>(spec.batch * spec.seq) / (ms / 1e3));
    return;
  }
  // Generate: the peer stamps each new token (ms from the call's start), as our runner does.
  const auto stamps = rep.value("token_ms", std::vector<double>{});
  if (static_cast<int64_t>(stamps.size()) != spec.new_tokens)
    m.fail(fmt::format("generated {} tokens, expected {}", stamps.size(), spec.new_tokens));
  m.ttft.samples.push_back(stamps.front());
  for (size_t k = 1; k < stamps.size(); ++k) m.itl.samples.push_back(stamps[k] - stamps[k - 1]);
  const double decode_s = (stamps.back() - stamps.front()) / 1e3;
  if (stamps.size() > 1 && decode_s > 0)
    m.tok_s.samples.push_back(static_cast<double>(spec.batch) *
                              static_cast<double>(stamps.size() - 1) / decode_s);
}

WorkloadResult PeerRunner::finish() {
  Impl& m = *impl_;
  WorkloadResult& r = m.r;
  m.send({{"cmd", "quit"}});
  const auto bye = m.receive();
  m.stop();
  r.load_average[1] = load_average_1m();
  r.metrics["latency_ms"] = m.latency;
  if (!m.tok_s.samples.empty()) r.metrics["tokens_s"] = m.tok_s;
  if (r.spec.kind == "forward") {
    r.metrics["throughput_seq_s"] = m.seq_s;
  } else {
    r.metrics["ttft_ms"] = m.ttft;
    if (!m.itl.samples.empty()) r.metrics["itl_ms"] = m.itl;
  }
  if (r.device_used.rfind("cpu", 0) == 0 && !m.cpu_share.samples.empty())
    r.metrics["cpu_share"] = m.cpu_share;
  Metric rss;
  rss.unit = "bytes";
  rss.samples.push_back(bye.value("peak_rss_bytes", 0.0));  // the peer process's own peak
  r.metrics["peak_rss_bytes"] = rss;
  return r;
}

}  // namespace kpt::bench
