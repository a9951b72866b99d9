#include "bench/history.h"

#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "kpt/status.h"

namespace kpt::bench {

namespace {
constexpr const char* kSchemaSql = R"sql(
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at TEXT NOT NULL,
  git_commit TEXT NOT NULL,
  env_key TEXT NOT NULL,
  environment TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
  run_id INTEGER NOT NULL REFERENCES runs(id),
  workload TEXT NOT NULL,
  env_key TEXT NOT NULL,
  result TEXT NOT NULL,
  PRIMARY KEY (run_id, workload)
);
CREATE INDEX IF NOT EXISTS results_by_workload ON results(workload, env_key, run_id);
)sql";

// A prepared statement that finalizes itself.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql, const std::string& path) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK) {
      throw Error(ErrorCode::kIo, fmt::format("{}: {}", path, sqlite3_errmsg(db)));
    }
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  sqlite3_stmt* get() { return s_; }
  void bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.c_str(), -1, SQLITE_TRANSIENT);
  }
  void bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  std::string text(int col) {
    const auto* p = sqlite3_column_text(s_, col);
    return p != nullptr ? reinterpret_cast<const char*>(p) : "";
  }

 private:
  sqlite3_stmt* s_ = nullptr;
};
}  // namespace

std::string default_history_path() {
  const char* xdg = std::getenv("XDG_DATA_HOME");
  if (xdg != nullptr && *xdg != '\0') return std::string(xdg) + "/kernelpytorch/history.sqlite";
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.local/share/kernelpytorch/history.sqlite";
}

History History::open(const std::string& path) {
  History h;
  h.path_ = path;
  std::error_code ec;
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  if (sqlite3_open(path.c_str(), &h.db_) != SQLITE_OK) {
    std::string msg = h.db_ != nullptr ? sqlite3_errmsg(h.db_) : "out of memory";
    throw Error(ErrorCode::kIo, fmt::format("cannot open history database {}: {}", path, msg));
  }
  sqlite3_busy_timeout(h.db_, 5000);  // concurrent CI jobs may share one file
  h.exec(kSchemaSql);
  return h;
}

History::History(History&& o) noexcept : path_(std::move(o.path_)), db_(o.db_) {
  o.db_ = nullptr;
}
History& History::operator=(History&& o) noexcept {
  if (this != &o) {
    if (db_ != nullptr) sqlite3_close(db_);
    path_ = std::move(o.path_);
    db_ = o.db_;
    o.db_ = nullptr;
  }
  return *this;
}
History::~History() {
  if (db_ != nullptr) sqlite3_close(db_);
}

void History::exec(const std::string& sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    throw Error(
        ErrorCode::kIo,
        fmt::format("history database {}: {} (is it a kernelpytorch history file?)", path_, msg));
  }
}

int64_t History::add(const BenchResult& result) {
  const nlohmann::json& env = result.environment;
  const std::string env_key = env.value("env_key", "");
  const std::string commit =
      env.value("build", nlohmann::json::object()).value("git_commit", "unknown");
  exec("BEGIN");
  try {
    Stmt run(db_,
             "INSERT INTO runs(created_at, git_commit, env_key, environment) VALUES (?, ?, ?, ?)",
             path_);
    run.bind(1, result.created_at);
    run.bind(2, commit);
    run.bind(3, env_key);
    run.bind(4, env.dump());
    if (sqlite3_step(run.get()) != SQLITE_DONE)
      throw Error(ErrorCode::kIo, fmt::format("{}: {}", path_, sqlite3_errmsg(db_)));
    const int64_t run_id = sqlite3_last_insert_rowid(db_);
    for (const auto& w : result.workloads) {
      Stmt s(
          db_,
          "INSERT OR REPLACE INTO results(run_id, workload, env_key, result) VALUES (?, ?, ?, ?)",
          path_);
      s.bind(1, run_id);
      s.bind(2, w.spec.id());
      s.bind(3, env_key);
      s.bind(4, to_json(w).dump());
      if (sqlite3_step(s.get()) != SQLITE_DONE)
        throw Error(ErrorCode::kIo, fmt::format("{}: {}", path_, sqlite3_errmsg(db_)));
    }
    exec("COMMIT");
    return run_id;
  } catch (...) {
    exec("ROLLBACK");
    throw;
  }
}

std::vector<HistoryEntry> History::entries(const std::string& workload,
                                           const std::string& env_key) const {
  Stmt s(db_,
         "SELECT r.id, r.created_at, r.git_commit, r.env_key, x.result, r.environment FROM results "
         "x JOIN runs r ON r.id = x.run_id "
         "WHERE (?1 = '' OR x.workload = ?1) AND (?2 = '' OR x.env_key = ?2) ORDER BY r.id, "
         "x.workload",
         path_);
  s.bind(1, workload);
  s.bind(2, env_key);
  std::vector<HistoryEntry> out;
  while (sqlite3_step(s.get()) == SQLITE_ROW) {
    HistoryEntry e;
    e.run_id = sqlite3_column_int64(s.get(), 0);
    e.created_at = s.text(1);
    e.git_commit = s.text(2);
    e.env_key = s.text(3);
    const std::string source = fmt::format("{} (run {})", path_, e.run_id);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(s.text(4));
    } catch (const nlohmann::json::parse_error& err) {
      throw Error(ErrorCode::kInvalidFile,
                  fmt::format("{}: stored result is not JSON: {}", source, err.what()));
    }
    e.result = workload_from_json(j, source);
    e.environment = nlohmann::json::parse(s.text(5), nullptr, false);
    if (e.environment.is_discarded()) e.environment = nlohmann::json::object();
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<std::string> History::workloads() const {
  Stmt s(db_, "SELECT DISTINCT workload FROM results ORDER BY workload", path_);
  std::vector<std::string> out;
  while (sqlite3_step(s.get()) == SQLITE_ROW) out.push_back(s.text(0));
  return out;
}

std::optional<HistoryEntry> History::latest(const std::string& workload, const std::string& env_key,
                                            int64_t exclude_run) const {
  auto all = entries(workload, env_key);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (it->run_id != exclude_run) return *it;
  }
  return std::nullopt;
}

}  // namespace kpt::bench
