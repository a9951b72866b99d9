// Benchmark history in SQLite: one row per run (environment, commit, time) and one per workload
// result (its full JSON, raw samples included), keyed by workload id and environment key.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/result.h"

struct sqlite3;

namespace kpt::bench {

struct HistoryEntry {
  int64_t run_id = 0;
  std::string created_at;
  std::string git_commit;
  std::string env_key;
  nlohmann::json environment;  // the run's environment fingerprint
  WorkloadResult result;
};

class History {
 public:
  // Opens (creating the file, its directory and the tables when needed). Throws kIo naming the
  // path.
  static History open(const std::string& path);
  History(History&&) noexcept;
  History& operator=(History&&) noexcept;
  ~History();

  const std::string& path() const { return path_; }
  // Stores every workload of the result under one run; returns the run id.
  int64_t add(const BenchResult& result);
  // Oldest first. Empty workload / env_key: no filter.
  std::vector<HistoryEntry> entries(const std::string& workload = "",
                                    const std::string& env_key = "") const;
  std::vector<std::string> workloads() const;
  // The newest entry of `workload` in `env_key` (excluding run `exclude_run`), if any.
  std::optional<HistoryEntry> latest(const std::string& workload, const std::string& env_key,
                                     int64_t exclude_run = -1) const;

 private:
  History() = default;
  void exec(const std::string& sql) const;
  std::string path_;
  sqlite3* db_ = nullptr;
};

// $XDG_DATA_HOME/kernelpytorch/history.sqlite, else ~/.local/share/kernelpytorch/history.sqlite.
std::string default_history_path();

}  // namespace kpt::bench
