// Graph IR: a straight-line list of named nodes over values with symbolic shapes.
// Symbolic dims (batch, seq, rows) are bound when the graph runs, so one graph serves every
// batch size and sequence length; the past length lives in the KV cache, not in shapes.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "kpt/tensor.h"

namespace kpt::graph {

enum class Sym : int8_t { kNone = -1, kBatch = 0, kSeq = 1, kRows = 2 };
constexpr int kNumSyms = 3;

struct Dim {
  int64_t value = 0;       // used when sym == kNone
  Sym sym = Sym::kNone;
  static Dim c(int64_t v) { return {v, Sym::kNone}; }
  static Dim batch() { return {0, Sym::kBatch}; }
  static Dim seq() { return {0, Sym::kSeq}; }
  static Dim rows() { return {0, Sym::kRows}; }
  bool operator==(const Dim&) const = default;
};
using SymShape = std::vector<Dim>;
std::string sym_shape_str(const SymShape& shape);  // "[B, S, 768]"

enum class OpKind {
  kInput,       // runtime input (token ids, positions, ...)
  kWeight,      // constant
  kEmbedding,   // (table [V, H], ids [B, S]) -> [B, S, H]
  kAdd,         // elementwise, same shape
  kMul,         // elementwise, same shape
  kLayerNorm,   // (x, gamma, beta) attrs eps
  kRmsNorm,     // (x, gamma) attrs eps
  kLinear,      // (x [.., in], w [out, in], bias? [out]) -> [.., out]
  kGeluErf,     // 0.5 x (1 + erf(x / sqrt 2))
  kGeluTanh,    // gelu_new / gelu_pytorch_tanh
  kSilu,
  kRelu,
  kRope,        // (x [B, S, heads*hd], positions [B, S]) attrs n_heads, head_dim, inv_freq
  kAttention,   // (q, k, v) over the paged KV cache; attrs layer, n_heads, n_kv_heads, head_dim, causal, scale
  kGatherRows,  // (x [B, S, H], rows [B, R]) -> [B, R, H]
  // Fused kinds, made only by graph/passes (never by model builders):
  kLinearFused,     // (x, w, [bias], [residual]) attrs has_bias, act (OpKind of an activation or -1), has_residual
  kAttentionFused,  // (qkv) packed or (q, k, v); [positions] when rope; attrs as kAttention + packed, rope, inv_freq
  kAddNorm,         // (a, b, gamma, [beta]) -> norm(a + b); attrs eps, rms (1: RMSNorm, 0: LayerNorm)
  kGlu,             // (gate_up [.., 2F]) -> act(gate) * up [.., F]; attrs act (OpKind)
};
const char* op_name(OpKind op);

using AttrValue = std::variant<int64_t, double, std::string, std::vector<double>>;

struct Value {
  std::string name;
  DType dtype = DType::kF32;
  SymShape shape;
  int producer = -1;  // node index, -1 for inputs and weights
  Tensor constant;    // weights only
};

struct Node {
  OpKind op;
  std::string name;
  std::vector<int> inputs;  // value ids
  int output = -1;          // value id
  std::map<std::string, AttrValue> attrs;

  int64_t attr_int(const std::string& key) const;
  double attr_double(const std::string& key) const;
  const std::vector<double>& attr_doubles(const std::string& key) const;
};

class Graph {
 public:
  int add_input(const std::string& name, DType dtype, SymShape shape);
  int add_weight(const std::string& name, Tensor tensor);
  int add_node(OpKind op, const std::string& name, std::vector<int> inputs, DType dtype, SymShape shape,
               std::map<std::string, AttrValue> attrs = {});
  void mark_output(int value);
  // For passes: a fresh value with no producer yet, and a whole new node list (producers are
  // recomputed; values no node produces any more stay in the table, unused).
  int add_value(const std::string& name, DType dtype, SymShape shape);
  void replace_nodes(std::vector<Node> nodes);

  const std::vector<Value>& values() const { return values_; }
  const Value& value(int id) const { return values_.at(static_cast<size_t>(id)); }
  const std::vector<Node>& nodes() const { return nodes_; }
  std::vector<Node>& mutable_nodes() { return nodes_; }
  const std::vector<int>& inputs() const { return inputs_; }
  const std::vector<int>& outputs() const { return outputs_; }
  int find_input(const std::string& name) const;  // -1 when absent

  size_t weight_bytes() const;
  std::string dump() const;  // one line per node: name = op(inputs) : shape

 private:
  std::vector<Value> values_;
  std::vector<Node> nodes_;
  std::vector<int> inputs_;
  std::vector<int> outputs_;
};

// Values of the symbolic dims for one run, -1 while unbound.
using SymBinding = std::array<int64_t, kNumSyms>;
// Binds the symbolic dims from the runtime inputs by graph input name, checking that every
// input is present with the graph's dtype, rank and static dims, and that inputs agree on each
// symbol. Every backend's Executable starts its run with this.
SymBinding bind_symbols(const Graph& graph, const std::map<std::string, Tensor>& inputs);
Shape concrete_shape(const SymShape& shape, const SymBinding& syms);

}  // namespace kpt::graph
