#include "core/logging.h"

#include <atomic>
#include <cstdio>

namespace kpt {

namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kQuiet)};
}

LogLevel log_level() { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }
void set_log_level(LogLevel level) { g_level.store(static_cast<int>(level)); }

void log_line(LogLevel level, const std::string& line) {
  std::fprintf(stderr, "%s%s\n", level == LogLevel::kDebug ? "[debug] " : "", line.c_str());
}

}  // namespace kpt
