#include "bench/environment.h"

#include <gnu/libc-version.h>
#include <sqlite3.h>
#include <sys/utsname.h>

#include <cstdlib>

#include <fmt/format.h>

#include "core/threading.h"

// Baked in by src/CMakeLists.txt at configure time.
#ifndef KPT_BUILD_VERSION
#define KPT_BUILD_VERSION "unknown"
#endif
#ifndef KPT_BUILD_GIT_COMMIT
#define KPT_BUILD_GIT_COMMIT "unknown"
#endif
#ifndef KPT_BUILD_GIT_DIRTY
#define KPT_BUILD_GIT_DIRTY 0
#endif
#ifndef KPT_BUILD_TYPE
#define KPT_BUILD_TYPE "unknown"
#endif
#ifndef KPT_BUILD_CXX_FLAGS
#define KPT_BUILD_CXX_FLAGS ""
#endif

namespace kpt::bench {

BuildInfo build_info() {
  BuildInfo b;
  b.version = KPT_BUILD_VERSION;
  b.git_commit = KPT_BUILD_GIT_COMMIT;
  b.git_dirty = KPT_BUILD_GIT_DIRTY != 0;
#if defined(__clang__)
  b.compiler =
      fmt::format("Clang {}.{}.{}", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
  b.compiler = fmt::format("GCC {}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
  b.compiler = "unknown";
#endif
  b.build_type = KPT_BUILD_TYPE;
#ifdef KPT_WITH_CUDA
  b.cuda = true;
#endif
#ifdef KPT_BUILD_ONEDNN
  b.onednn = true;
#endif
  b.cxx_flags = KPT_BUILD_CXX_FLAGS;
  return b;
}

namespace {

// FNV-1a, 64 bit: stable across platforms and runs (std::hash is not).
std::string fnv1a_hex(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return fmt::format("{:016x}", h);
}

nlohmann::json os_json() {
  nlohmann::json j;
  struct utsname u {};
  if (uname(&u) == 0) {
    j["system"] = u.sysname;
    j["release"] = u.release;
    j["machine"] = u.machine;
  }
  j["libc"] = std::string("glibc ") + gnu_get_libc_version();
  return j;
}

}  // namespace

nlohmann::json environment_json(const hw::Hardware& hw) {
  nlohmann::json j;
  j["schema"] = "kernelpytorch.environment/1";
  j["os"] = os_json();
  nlohmann::json cpu;
  cpu["vendor"] = hw.cpu.vendor;
  cpu["model"] = hw.cpu.model;
  cpu["arch"] = hw.cpu.arch;
  cpu["logical_cores"] = hw.cpu.logical_cores;
  cpu["usable_cores"] = hw.cpu.usable_cores;
  cpu["flags"] = hw.cpu.flags();
  nlohmann::json gpus = nlohmann::json::array();
  for (const auto& g : hw.gpu.gpus) {
    gpus.push_back({{"index", g.index},
                    {"name", g.name},
                    {"compute_capability", fmt::format("{}.{}", g.cc_major, g.cc_minor)},
                    {"memory_bytes", g.memory_bytes},
                    {"sm_count", g.sm_count},
                    {"clock_mhz", g.clock_mhz},
                    {"memory_clock_mhz", g.memory_clock_mhz},
                    {"memory_bus_bits", g.memory_bus_bits},
                    {"peak_bandwidth_gbs", g.peak_bandwidth_gbs()}});
  }
  j["hardware"] = {
      {"cpu", cpu},
      {"memory",
       {{"total_bytes", hw.memory.total_bytes}, {"available_bytes", hw.memory.available_bytes}}},
      {"gpus", gpus},
      {"cuda_driver",
       {{"found", hw.gpu.driver_found},
        {"driver_version", hw::cuda_version_string(hw.gpu.driver_version)},
        {"runtime_version", hw::cuda_version_string(hw.gpu.runtime_version)},
        {"error", hw.gpu.error}}}};
  const BuildInfo b = build_info();
  j["build"] = {{"version", b.version},   {"git_commit", b.git_commit}, {"git_dirty", b.git_dirty},
                {"compiler", b.compiler}, {"build_type", b.build_type}, {"cuda", b.cuda},
                {"onednn", b.onednn},     {"cxx_flags", b.cxx_flags}};
  j["libraries"] = {
      {"fmt",
       fmt::format("{}.{}.{}", FMT_VERSION / 10000, FMT_VERSION / 100 % 100, FMT_VERSION % 100)},
      {"nlohmann_json", fmt::format("{}.{}.{}", NLOHMANN_JSON_VERSION_MAJOR,
                                    NLOHMANN_JSON_VERSION_MINOR, NLOHMANN_JSON_VERSION_PATCH)},
      {"sqlite", sqlite3_libversion()},
#ifdef _OPENMP
      {"openmp", fmt::format("{}", _OPENMP)},
#endif
  };
  const char* omp = std::getenv("OMP_NUM_THREADS");
  j["threads"] = {{"num_threads", num_threads()}, {"OMP_NUM_THREADS", omp != nullptr ? omp : ""}};
  j["env_key"] = env_key_of(j);
  return j;
}

nlohmann::json environment_json() {
  return environment_json(hw::detect_hardware());
}

std::string env_key_of(const nlohmann::json& e) {
  // Only what decides speed; value() keeps a partial (hand-written, older) fingerprint usable.
  nlohmann::json k;
  const auto& hwj = e.value("hardware", nlohmann::json::object());
  const auto& cpu = hwj.value("cpu", nlohmann::json::object());
  k["cpu"] = {cpu.value("model", ""), cpu.value("usable_cores", 0),
              cpu.value("flags", nlohmann::json::array())};
  nlohmann::json gpus = nlohmann::json::array();
  for (const auto& g : hwj.value("gpus", nlohmann::json::array())) {
    gpus.push_back({g.value("name", ""), g.value("compute_capability", ""),
                    g.value("memory_bytes", int64_t{0})});
  }
  k["gpus"] = gpus;
  const auto& b = e.value("build", nlohmann::json::object());
  k["build"] = {b.value("compiler", ""), b.value("build_type", ""), b.value("cuda", false),
                b.value("onednn", false)};
  k["threads"] = e.value("threads", nlohmann::json::object()).value("num_threads", 0);
  return fnv1a_hex(k.dump());
}

}  // namespace kpt::bench
