#include "graph/ir.h"

#include <fmt/format.h>

namespace kpt::graph {

std::string sym_shape_str(const SymShape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    switch (shape[i].sym) {
      case Sym::kBatch: s += "B"; break;
      case Sym::kSeq: s += "S"; break;
      case Sym::kRows: s += "R"; break;
      case Sym::kNone: s += std::to_string(shape[i].value); break;
    }
  }
  return s + "]";
}

const char* op_name(OpKind op) {
  switch (op) {
    case OpKind::kInput: return "input";
    case OpKind::kWeight: return "weight";
    case OpKind::kEmbedding: return "embedding";
    case OpKind::kAdd: return "add";
    case OpKind::kMul: return "mul";
    case OpKind::kLayerNorm: return "layer_norm";
    case OpKind::kRmsNorm: return "rms_norm";
    case OpKind::kLinear: return "linear";
    case OpKind::kGeluErf: return "gelu_erf";
    case OpKind::kGeluTanh: return "gelu_tanh";
    case OpKind::kSilu: return "silu";
    case OpKind::kRelu: return "relu";
    case OpKind::kRope: return "rope";
    case OpKind::kAttention: return "attention";
    case OpKind::kGatherRows: return "gather_rows";
    case OpKind::kLinearFused: return "linear_fused";
    case OpKind::kAttentionFused: return "attention_fused";
    case OpKind::kAddNorm: return "add_norm";
    case OpKind::kGlu: return "glu";
  }
  return "?";
}

int64_t Node::attr_int(const std::string& key) const {
  auto it = attrs.find(key);
  KPT_CHECK(it != attrs.end() && std::holds_alternative<int64_t>(it->second),
            fmt::format("node {} lacks int attribute {}", name, key));
  return std::get<int64_t>(it->second);
}

double Node::attr_double(const std::string& key) const {
  auto it = attrs.find(key);
  KPT_CHECK(it != attrs.end() && std::holds_alternative<double>(it->second),
            fmt::format("node {} lacks double attribute {}", name, key));
  return std::get<double>(it->second);
}

const std::vector<double>& Node::attr_doubles(const std::string& key) const {
  auto it = attrs.find(key);
  KPT_CHECK(it != attrs.end() && std::holds_alternative<std::vector<double>>(it->second),
            fmt::format("node {} lacks list attribute {}", name, key));
  return std::get<std::vector<double>>(it->second);
}

int Graph::add_input(const std::string& name, DType dtype, SymShape shape) {
  values_.push_back({name, dtype, std::move(shape), -1, {}});
  int id = static_cast<int>(values_.size()) - 1;
  inputs_.push_back(id);
  return id;
}

int Graph::add_weight(const std::string& name, Tensor tensor) {
  SymShape shape;
  for (int64_t d : tensor.shape()) shape.push_back(Dim::c(d));
  values_.push_back({name, tensor.dtype(), std::move(shape), -1, std::move(tensor)});
  return static_cast<int>(values_.size()) - 1;
}

int Graph::add_node(OpKind op, const std::string& name, std::vector<int> inputs, DType dtype, SymShape shape,
                    std::map<std::string, AttrValue> attrs) {
  for (int v : inputs) KPT_CHECK(v >= 0 && v < static_cast<int>(values_.size()), "node input out of range: " + name);
  values_.push_back({name, dtype, std::move(shape), static_cast<int>(nodes_.size()), {}});
  int out = static_cast<int>(values_.size()) - 1;
  nodes_.push_back({op, name, std::move(inputs), out, std::move(attrs)});
  return out;
}

void Graph::mark_output(int value) { outputs_.push_back(value); }

int Graph::add_value(const std::string& name, DType dtype, SymShape shape) {
  values_.push_back({name, dtype, std::move(shape), -1, {}});
  return static_cast<int>(values_.size()) - 1;
}

void Graph::replace_nodes(std::vector<Node> nodes) {
  for (auto& v : values_) {
    if (!v.constant.defined()) v.producer = -1;
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (int in : nodes[i].inputs) KPT_CHECK(in >= 0 && in < static_cast<int>(values_.size()), "node input out of range: " + nodes[i].name);
    values_[static_cast<size_t>(nodes[i].output)].producer = static_cast<int>(i);
  }
  nodes_ = std::move(nodes);
}

int Graph::find_input(const std::string& name) const {
  for (int id : inputs_) {
    if (values_[static_cast<size_t>(id)].name == name) return id;
  }
  return -1;
}

size_t Graph::weight_bytes() const {
  size_t n = 0;
  for (const auto& v : values_) {
    if (v.constant.defined()) n += v.constant.size_bytes();
  }
  return n;
}

std::string Graph::dump() const {
  std::string out;
  for (const auto& n : nodes_) {
    std::string args;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      if (i) args += ", ";
      args += values_[static_cast<size_t>(n.inputs[i])].name;
    }
    const Value& v = values_[static_cast<size_t>(n.output)];
    out += fmt::format("{} = {}({}) : {} {}\n", n.name, op_name(n.op), args, dtype_name(v.dtype),
                       sym_shape_str(v.shape));
  }
  return out;
}

SymBinding bind_symbols(const Graph& graph, const std::map<std::string, Tensor>& inputs) {
  SymBinding sym{};
  sym.fill(-1);
  for (int id : graph.inputs()) {
    const auto& val = graph.value(id);
    auto it = inputs.find(val.name);
    KPT_CHECK(it != inputs.end(), "missing graph input " + val.name);
    const Tensor& t = it->second;
    KPT_CHECK(t.dtype() == val.dtype && t.rank() == static_cast<int>(val.shape.size()),
              fmt::format("input {} has dtype {} rank {}", val.name, dtype_name(t.dtype()), t.rank()));
    for (size_t i = 0; i < val.shape.size(); ++i) {
      const auto& d = val.shape[i];
      if (d.sym == Sym::kNone) {
        KPT_CHECK(d.value == t.shape()[i], "input " + val.name + " has a wrong static dimension");
      } else {
        int64_t& bound = sym[static_cast<size_t>(d.sym)];
        KPT_CHECK(bound < 0 || bound == t.shape()[i],
                  fmt::format("input {} disagrees on a symbolic dimension ({} vs {})", val.name, bound, t.shape()[i]));
        bound = t.shape()[i];
      }
    }
  }
  return sym;
}

Shape concrete_shape(const SymShape& shape, const SymBinding& syms) {
  Shape out;
  out.reserve(shape.size());
  for (const auto& d : shape) {
    const int64_t v = d.sym == Sym::kNone ? d.value : syms[static_cast<size_t>(d.sym)];
    KPT_CHECK(v >= 0, "unbound symbolic dimension");
    out.push_back(v);
  }
  return out;
}

}  // namespace kpt::graph
