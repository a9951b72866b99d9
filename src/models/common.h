// Shared blocks for the family files: a validated weight view and a graph builder whose
// helpers name every intermediate ("attn_norm.3").
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "models/model.h"

namespace kpt::models {

// A checkpoint checked against a schema: every required tensor present with its shape, no
// tensor left unexplained. All problems are reported in one error.
class Weights {
 public:
  static Weights bind(const io::WeightStore& store, const WeightSchema& schema);
  bool has(const std::string& name) const;
  // f32 tensor (zero-copy for aligned f32 data, converted otherwise).
  Tensor get(const std::string& name) const;
  const std::string& prefix() const { return prefix_; }
  std::string stored_dtype() const;  // dtype of the first schema tensor, e.g. "bf16"
  int64_t n_parameters() const;

 private:
  const io::WeightStore* store_ = nullptr;
  std::string prefix_;
  std::map<std::string, std::string> present_;  // schema name -> full name in the store
};

bool glob_match(const std::string& pattern, const std::string& text);

// Rotary embedding frequencies as transformers computes them (float32 math), after scaling.
struct RopeConfig {
  double theta = 10000.0;
  std::string type = "default";  // default | linear | llama3
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_positions = 0;
};
RopeConfig parse_rope_config(const io::HfConfig& config, double default_theta);
std::vector<double> rope_inv_freq(const RopeConfig& rope, int64_t head_dim);

class Builder {
 public:
  Builder(graph::Graph& graph, const Weights& weights) : g_(graph), w_(weights) {}

  int input(const std::string& name, DType dtype, graph::SymShape shape) { return g_.add_input(name, dtype, shape); }
  int weight(const std::string& name);             // as stored (f32), shared when used twice
  int weight_transposed(const std::string& name);  // [in, out] -> [out, in] (GPT-2 Conv1D)
  int weight_tensor(const std::string& name, Tensor t);
  int maybe_weight(const std::string& name) { return w_.has(name) ? weight(name) : -1; }

  int embedding(int table, int ids, const std::string& name);
  int add(int a, int b, const std::string& name);
  int mul(int a, int b, const std::string& name);
  int layer_norm(int x, int gamma, int beta, double eps, const std::string& name);
  int rms_norm(int x, int gamma, double eps, const std::string& name);
  int linear(int x, int w, int bias, const std::string& name);  // bias -1: none
  int activation(const std::string& hf_act, int x, const std::string& name);
  int rope(int x, int positions, int64_t n_heads, int64_t head_dim, const std::vector<double>& inv_freq,
           const std::string& name);
  int attention(int q, int k, int v, int64_t layer, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                bool causal, double scale, int64_t window, const std::string& name);
  int gather_rows(int x, int rows, const std::string& name);

  const graph::SymShape& shape(int v) const { return g_.value(v).shape; }
  graph::Graph& graph() { return g_; }

 private:
  graph::Graph& g_;
  const Weights& w_;
  std::map<std::string, int> cache_;
};

// Maps an HF activation name to the graph op; throws kUnsupported naming the choices.
graph::OpKind activation_op(const std::string& hf_act, const std::string& source);

}  // namespace kpt::models
