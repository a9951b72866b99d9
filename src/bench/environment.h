// The environment fingerprint: hardware, OS, build and library versions. `doctor --json` prints
// it and every benchmark result carries it, so a number always travels with its conditions.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "optimize/hardware.h"

namespace kpt::bench {

struct BuildInfo {
  std::string version;     // project version
  std::string git_commit;  // at configure time ("unknown" outside a git checkout)
  bool git_dirty = false;  // uncommitted changes at configure time
  std::string compiler;    // e.g. "GCC 12.2.0"
  std::string build_type;  // Release, Debug, ...
  bool cuda = false;       // built with the CUDA backend
  bool onednn = false;     // built with oneDNN
  std::string cxx_flags;
};
BuildInfo build_info();

// Everything doctor knows, as JSON:
//   {"schema", "os", "hardware": {"cpu", "memory", "gpus"...}, "build", "libraries",
//    "threads", "env_key"}
// `env_key` hashes what decides speed and must match for two results to be comparable
// (CPU model and usable ISA, cores, thread count, GPUs, compiler, build type, CUDA/oneDNN);
// it leaves out the git commit and free memory, which change between comparable runs.
nlohmann::json environment_json(const hw::Hardware& hardware);
nlohmann::json environment_json();  // detects the hardware (GPU query time-out 5 s)

std::string env_key_of(const nlohmann::json& environment);

}  // namespace kpt::bench
