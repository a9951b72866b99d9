#include "serve/pooling.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "kpt/status.h"

namespace kpt::serve {

namespace fs = std::filesystem;

namespace {
nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kInvalidFile, fmt::format("{}: not valid JSON: {}", path.string(), e.what()));
  }
}
}  // namespace

std::string Pooling::describe() const {
  const char* names[] = {"mean", "cls", "max", "mean_sqrt_len", "lasttoken"};
  return fmt::format("{} pooling{}", names[static_cast<int>(mode)], normalize ? ", L2-normalized" : "");
}

Pooling Pooling::from_model_dir(const std::string& dir) {
  Pooling p;
  const fs::path modules = fs::path(dir) / "modules.json";
  if (!fs::exists(modules)) return p;
  const nlohmann::json mods = read_json(modules);
  if (!mods.is_array()) throw Error(ErrorCode::kInvalidFile, fmt::format("{}: expected an array of modules", modules.string()));
  p.normalize = false;
  for (const auto& m : mods) {
    const std::string type = m.is_object() ? m.value("type", "") : "";
    if (type == "sentence_transformers.models.Normalize") p.normalize = true;
    if (type != "sentence_transformers.models.Pooling") continue;
    const fs::path cfg_path = fs::path(dir) / m.value("path", "1_Pooling") / "config.json";
    if (!fs::exists(cfg_path)) continue;
    const nlohmann::json cfg = read_json(cfg_path);
    auto on = [&](const char* key) { return cfg.is_object() && cfg.value(key, false); };
    if (on("pooling_mode_cls_token")) {
      p.mode = Mode::kCls;
    } else if (on("pooling_mode_max_tokens")) {
      p.mode = Mode::kMax;
    } else if (on("pooling_mode_mean_sqrt_len_tokens")) {
      p.mode = Mode::kMeanSqrtLen;
    } else if (on("pooling_mode_lasttoken")) {
      p.mode = Mode::kLastToken;
    } else {
      p.mode = Mode::kMean;
    }
  }
  return p;
}

std::vector<std::vector<float>> Pooling::apply(const Tensor& hidden, const std::vector<std::vector<int64_t>>& mask) const {
  const int64_t batch = hidden.shape()[0], seq = hidden.shape()[1], dim = hidden.shape()[2];
  const float* h = hidden.data<float>();
  std::vector<std::vector<float>> out(static_cast<size_t>(batch), std::vector<float>(static_cast<size_t>(dim), 0.f));
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<double> acc(static_cast<size_t>(dim), mode == Mode::kMax ? -INFINITY : 0.0);
    int64_t n = 0, last = 0;
    for (int64_t s = 0; s < seq; ++s) {
      if (mask[static_cast<size_t>(b)][static_cast<size_t>(s)] == 0) continue;
      const float* row = h + (b * seq + s) * dim;
      if (n == 0 && mode == Mode::kCls) {
        for (int64_t d = 0; d < dim; ++d) acc[static_cast<size_t>(d)] = row[d];
      }
      for (int64_t d = 0; d < dim && (mode == Mode::kMean || mode == Mode::kMeanSqrtLen); ++d) acc[static_cast<size_t>(d)] += row[d];
      for (int64_t d = 0; d < dim && mode == Mode::kMax; ++d) acc[static_cast<size_t>(d)] = std::max<double>(acc[static_cast<size_t>(d)], row[d]);
      ++n;
      last = s;
    }
    if (mode == Mode::kLastToken) {
      for (int64_t d = 0; d < dim; ++d) acc[static_cast<size_t>(d)] = h[(b * seq + last) * dim + d];
    }
    const double scale = mode == Mode::kMean ? 1.0 / std::max<int64_t>(n, 1)
                         : mode == Mode::kMeanSqrtLen ? 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(n, 1)))
                                                      : 1.0;
    double norm = 0;
    for (double& v : acc) {
      v *= scale;
      norm += v * v;
    }
    norm = normalize ? std::max(std::sqrt(norm), 1e-12) : 1.0;  // torch.nn.functional.normalize's eps
    for (int64_t d = 0; d < dim; ++d) out[static_cast<size_t>(b)][static_cast<size_t>(d)] = static_cast<float>(acc[static_cast<size_t>(d)] / norm);
  }
  return out;
}

}  // namespace kpt::serve
