#include "models/common.h"

#include <cmath>
#include <numbers>

#include <fmt/format.h>

namespace kpt::models {

using graph::Dim;
using graph::OpKind;
using graph::SymShape;

bool glob_match(const std::string& pattern, const std::string& text) {
  // Iterative '*' matcher with backtracking to the last star.
  size_t p = 0, t = 0, star = std::string::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

namespace {
std::string list_some(const std::vector<std::string>& items) {
  constexpr size_t kShown = 8;
  std::vector<std::string> shown(items.begin(), items.begin() + static_cast<long>(std::min(items.size(), kShown)));
  std::string s = fmt::format("{}", fmt::join(shown, ", "));
  if (items.size() > kShown) s += fmt::format(" and {} more", items.size() - kShown);
  return s;
}
}  // namespace

Weights Weights::bind(const io::WeightStore& store, const WeightSchema& schema) {
  Weights w;
  w.store_ = &store;
  bool found = false;
  for (const auto& p : schema.prefixes) {
    if (store.contains(p + schema.anchor)) {
      w.prefix_ = p;
      found = true;
      break;
    }
  }
  if (!found) {
    std::vector<std::string> quoted;
    for (const auto& p : schema.prefixes) quoted.push_back("'" + p + "'");
    throw Error(ErrorCode::kInvalidFile,
                fmt::format("the checkpoint does not hold a {} model: no tensor '{}' (tried prefixes {}); "
                            "it has {} tensors, e.g. {}",
                            schema.family, schema.anchor, fmt::join(quoted, ", "), store.names().size(),
                            list_some(store.names())));
  }
  std::vector<std::string> missing, misshaped, unexpected, bad_dtype;
  std::set<std::string> expected;
  for (const auto& spec : schema.tensors) {
    std::string full = spec.unprefixed ? spec.name : w.prefix_ + spec.name;
    expected.insert(full);
    if (!store.contains(full)) {
      if (!spec.optional) missing.push_back(full);
      continue;
    }
    const auto& info = store.info(full);
    if (info.shape != spec.shape) {
      misshaped.push_back(fmt::format("{} is {} but the config implies {}", full, shape_str(info.shape),
                                      shape_str(spec.shape)));
    }
    if (info.dtype_str != "F32" && info.dtype_str != "F16" && info.dtype_str != "BF16") {
      bad_dtype.push_back(fmt::format("{} ({})", full, info.dtype_str));
    }
    w.present_[spec.name] = full;
  }
  for (const auto& name : store.names()) {
    if (expected.count(name)) continue;
    bool known = false;
    for (const auto& pat : schema.known_unused) {
      if (glob_match(pat, name) || glob_match(w.prefix_ + pat, name)) {
        known = true;
        break;
      }
    }
    if (!known) unexpected.push_back(name);
  }
  std::vector<std::string> problems;
  if (!missing.empty()) problems.push_back(fmt::format("missing tensors: {}", list_some(missing)));
  if (!misshaped.empty()) problems.push_back(fmt::format("wrong shapes: {}", list_some(misshaped)));
  if (!unexpected.empty()) {
    problems.push_back(fmt::format("unexpected tensors (not part of the {} schema): {}", schema.family,
                                   list_some(unexpected)));
  }
  if (!bad_dtype.empty()) problems.push_back(fmt::format("unsupported dtypes (need F32/F16/BF16): {}", list_some(bad_dtype)));
  if (!problems.empty()) {
    throw Error(ErrorCode::kInvalidFile, fmt::format("the checkpoint does not match the {} weight schema: {}",
                                                     schema.family, fmt::join(problems, "; ")));
  }
  return w;
}

bool Weights::has(const std::string& name) const { return present_.count(name) != 0; }

Tensor Weights::get(const std::string& name) const {
  KPT_CHECK(has(name), "weight not in schema or absent: " + name);
  Tensor t = store_->get(present_.at(name));
  return t.dtype() == DType::kF32 ? t : t.to_f32();
}

std::string Weights::stored_dtype() const {
  if (present_.empty()) return "f32";
  std::set<std::string> kinds;
  for (const auto& [name, full] : present_) kinds.insert(store_->info(full).dtype_str);
  std::string s;
  for (const auto& k : kinds) {
    std::string lower = k;
    for (auto& c : lower) c = static_cast<char>(std::tolower(c));
    s += (s.empty() ? "" : "+") + lower;
  }
  return s;
}

int64_t Weights::n_parameters() const {
  int64_t n = 0;
  for (const auto& [name, full] : present_) n += shape_numel(store_->info(full).shape);
  return n;
}

RopeConfig parse_rope_config(const io::HfConfig& config, double default_theta) {
  RopeConfig rope;
  rope.theta = config.get_double("rope_theta", default_theta);
  // transformers 5.x: rope_parameters {rope_type, rope_theta, ...}; 4.x: rope_theta + rope_scaling.
  const nlohmann::json* params = config.get_object("rope_parameters");
  const nlohmann::json* scaling = config.get_object("rope_scaling");
  if (params != nullptr && scaling != nullptr) {
    // Both present: transformers 5 writes both in some versions; they must agree on the type.
  }
  const nlohmann::json* p = params != nullptr ? params : scaling;
  std::string ctx = config.source() + (params != nullptr ? " rope_parameters" : " rope_scaling");
  if (p == nullptr) return rope;
  if (p->contains("rope_theta") && !(*p)["rope_theta"].is_null()) rope.theta = io::json_double(*p, "rope_theta", ctx);
  std::string type = "default";
  for (const char* key : {"rope_type", "type"}) {
    if (p->contains(key) && (*p)[key].is_string()) {
      type = (*p)[key].get<std::string>();
      break;
    }
  }
  rope.type = type;
  if (type == "default") return rope;
  if (type == "linear") {
    rope.factor = io::json_double(*p, "factor", ctx);
  } else if (type == "llama3") {
    rope.factor = io::json_double(*p, "factor", ctx);
    rope.low_freq_factor = io::json_double(*p, "low_freq_factor", ctx);
    rope.high_freq_factor = io::json_double(*p, "high_freq_factor", ctx);
    rope.original_max_positions = io::json_int(*p, "original_max_position_embeddings", ctx);
    if (rope.high_freq_factor <= rope.low_freq_factor) {
      throw Error(ErrorCode::kInvalidFile, fmt::format("{}: high_freq_factor ({}) must exceed low_freq_factor ({})",
                                                       ctx, rope.high_freq_factor, rope.low_freq_factor));
    }
  } else {
    throw Error(ErrorCode::kUnsupported,
                fmt::format("{}: rope type '{}' is not supported (supported: default, linear, llama3)", ctx, type));
  }
  if (!(rope.factor > 0)) throw Error(ErrorCode::kInvalidFile, fmt::format("{}: factor must be > 0", ctx));
  return rope;
}

std::vector<double> rope_inv_freq(const RopeConfig& rope, int64_t head_dim) {
  // transformers: 1 / base ** (arange(0, dim, 2, int64).float() / dim), in float32.
  std::vector<double> inv(static_cast<size_t>(head_dim / 2));
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    float f = 1.0f / std::pow(static_cast<float>(rope.theta), exponent);
    inv[static_cast<size_t>(i)] = f;
  }
  if (rope.type == "linear") {
    for (auto& f : inv) f = static_cast<float>(static_cast<float>(f) / static_cast<float>(rope.factor));
  } else if (rope.type == "llama3") {
    const float factor = static_cast<float>(rope.factor);
    const float old_ctx = static_cast<float>(rope.original_max_positions);
    const float low_wavelen = old_ctx / static_cast<float>(rope.low_freq_factor);
    const float high_wavelen = old_ctx / static_cast<float>(rope.high_freq_factor);
    for (auto& f : inv) {
      float fi = static_cast<float>(f);
      float wavelen = 2.0f * static_cast<float>(std::numbers::pi) / fi;
      float scaled = wavelen > low_wavelen ? fi / factor : fi;
      float smooth = (old_ctx / wavelen - static_cast<float>(rope.low_freq_factor)) /
                     static_cast<float>(rope.high_freq_factor - rope.low_freq_factor);
      float smoothed = (1.0f - smooth) * scaled / factor + smooth * scaled;
      bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
      f = medium ? smoothed : scaled;
    }
  }
  return inv;
}

OpKind activation_op(const std::string& hf_act, const std::string& source) {
  if (hf_act == "gelu") return OpKind::kGeluErf;
  if (hf_act == "gelu_new" || hf_act == "gelu_pytorch_tanh" || hf_act == "gelu_fast") return OpKind::kGeluTanh;
  if (hf_act == "silu" || hf_act == "swish") return OpKind::kSilu;
  if (hf_act == "relu") return OpKind::kRelu;
  throw Error(ErrorCode::kUnsupported,
              fmt::format("{}: activation '{}' is not supported (supported: gelu, gelu_new, gelu_pytorch_tanh, "
                          "silu, relu)",
                          source, hf_act));
}

int Builder::weight(const std::string& name) {
  auto it = cache_.find(name);
  if (it != cache_.end()) return it->second;
  int id = g_.add_weight(name, w_.get(name));
  cache_[name] = id;
  return id;
}

int Builder::weight_transposed(const std::string& name) {
  std::string key = name + ".T";
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second;
  Tensor src = w_.get(name);
  KPT_CHECK(src.rank() == 2, "weight_transposed needs a matrix: " + name);
  const int64_t rows = src.dim(0), cols = src.dim(1);
  Tensor dst = Tensor::empty(DType::kF32, {cols, rows});
  const float* s = src.data<float>();
  float* d = dst.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) d[c * rows + r] = s[r * cols + c];
  }
  int id = g_.add_weight(key, dst);
  cache_[key] = id;
  return id;
}

int Builder::weight_tensor(const std::string& name, Tensor t) {
  int id = g_.add_weight(name, std::move(t));
  cache_[name] = id;
  return id;
}

int Builder::embedding(int table, int ids, const std::string& name) {
  SymShape s = shape(ids);
  s.push_back(shape(table)[1]);
  return g_.add_node(OpKind::kEmbedding, name, {table, ids}, DType::kF32, s);
}

int Builder::add(int a, int b, const std::string& name) {
  KPT_CHECK(shape(a) == shape(b), fmt::format("add {}: {} vs {}", name, graph::sym_shape_str(shape(a)),
                                              graph::sym_shape_str(shape(b))));
  return g_.add_node(OpKind::kAdd, name, {a, b}, DType::kF32, shape(a));
}

int Builder::mul(int a, int b, const std::string& name) {
  KPT_CHECK(shape(a) == shape(b), "mul shape mismatch: " + name);
  return g_.add_node(OpKind::kMul, name, {a, b}, DType::kF32, shape(a));
}

int Builder::layer_norm(int x, int gamma, int beta, double eps, const std::string& name) {
  return g_.add_node(OpKind::kLayerNorm, name, {x, gamma, beta}, DType::kF32, shape(x), {{"eps", eps}});
}

int Builder::rms_norm(int x, int gamma, double eps, const std::string& name) {
  return g_.add_node(OpKind::kRmsNorm, name, {x, gamma}, DType::kF32, shape(x), {{"eps", eps}});
}

int Builder::linear(int x, int w, int bias, const std::string& name) {
  const SymShape& ws = shape(w);
  SymShape s = shape(x);
  KPT_CHECK(ws.size() == 2 && s.back() == ws[1],
            fmt::format("linear {}: x {} w {}", name, graph::sym_shape_str(s), graph::sym_shape_str(ws)));
  s.back() = ws[0];
  std::vector<int> in = {x, w};
  if (bias >= 0) in.push_back(bias);
  return g_.add_node(OpKind::kLinear, name, in, DType::kF32, s);
}

int Builder::activation(const std::string& hf_act, int x, const std::string& name) {
  return g_.add_node(activation_op(hf_act, "config.json"), name, {x}, DType::kF32, shape(x));
}

int Builder::rope(int x, int positions, int64_t n_heads, int64_t head_dim, const std::vector<double>& inv_freq,
                  const std::string& name) {
  return g_.add_node(OpKind::kRope, name, {x, positions}, DType::kF32, shape(x),
                     {{"n_heads", n_heads}, {"head_dim", head_dim}, {"inv_freq", inv_freq}});
}

int Builder::attention(int q, int k, int v, int64_t layer, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                       bool causal, double scale, int64_t window, const std::string& name) {
  KPT_CHECK(n_heads % n_kv_heads == 0, "heads not a multiple of kv heads");
  return g_.add_node(OpKind::kAttention, name, {q, k, v}, DType::kF32, shape(q),
                     {{"layer", layer},
                      {"n_heads", n_heads},
                      {"n_kv_heads", n_kv_heads},
                      {"head_dim", head_dim},
                      {"causal", static_cast<int64_t>(causal)},
                      {"scale", scale},
                      {"window", window}});
}

int Builder::gather_rows(int x, int rows, const std::string& name) {
  SymShape s = shape(x);
  s[1] = Dim::rows();
  return g_.add_node(OpKind::kGatherRows, name, {x, rows}, DType::kF32, s);
}

}  // namespace kpt::models
