// kpt_plan.json: what `kernelpytorch optimize` decided, read back when the directory is loaded.
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "kpt/engine.h"
#include "optimize/hardware.h"

namespace kpt {

namespace fs = std::filesystem;

std::optional<OptimizationPlan> read_plan(const std::string& model_dir) {
  const fs::path path = fs::path(model_dir) / "kpt_plan.json";
  if (!fs::exists(path)) return std::nullopt;
  std::ifstream in(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kInvalidFile, fmt::format("{}: not valid JSON ({})", path.string(), e.what()));
  }
  auto str = [&](const char* key) {
    if (!j.is_object() || !j.contains(key) || !j[key].is_string()) {
      throw Error(ErrorCode::kInvalidFile, fmt::format("{}: missing string '{}'", path.string(), key));
    }
    return j[key].get<std::string>();
  };
  OptimizationPlan plan;
  if (str("format") != "kernelpytorch-plan/1") {
    throw Error(ErrorCode::kUnsupported, fmt::format("{}: plan format '{}' is not supported by this version "
                                                     "(expected kernelpytorch-plan/1); run optimize again",
                                                     path.string(), str("format")));
  }
  plan.level = parse_level(str("level"));
  if (plan.level == Level::kProduction) {
    throw Error(ErrorCode::kInvalidFile, fmt::format("{}: 'level' must be the resolved level, not production", path.string()));
  }
  plan.device = str("device");
  plan.hardware = str("hardware");
  return plan;
}

EngineOptions options_for_plan(const OptimizationPlan& plan, EngineOptions base, std::string& note) {
  base.level = plan.level;
  note.clear();
  if (base.device != "auto") return base;  // an explicit device wins
  if (plan.device.rfind("cuda", 0) == 0) {
    hw::GpuReport gpus = hw::detect_gpus(2000);
    if (gpus.gpus.empty()) {
      note = fmt::format("the plan was measured on {} ({}); this machine has no usable GPU ({}), so level {} runs "
                         "on cpu instead and its passes adapt to this CPU",
                         plan.device, plan.hardware, gpus.error.empty() ? "none found" : gpus.error,
                         level_name(plan.level));
      base.device = "cpu";
      return base;
    }
  }
  base.device = plan.device;
  return base;
}

}  // namespace kpt
