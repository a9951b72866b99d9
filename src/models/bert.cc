// BERT encoder (BertModel): word + position + token-type embeddings, post-LN layers.
// Output: last_hidden_state [B, S, H]. Task heads (pooler, cls.*) are accepted and ignored.
#include <cmath>

#include <fmt/format.h>

#include "models/common.h"

namespace kpt::models {

namespace {

struct BertConfig {
  int64_t vocab_size, hidden, n_layers, n_heads, intermediate, max_positions, type_vocab_size;
  double eps;
  std::string act;
};

BertConfig parse_bert_config(const io::HfConfig& c) {
  BertConfig b{};
  b.vocab_size = c.get_int("vocab_size");
  b.hidden = c.get_int("hidden_size", 768);
  b.n_layers = c.get_int("num_hidden_layers", 12);
  b.n_heads = c.get_int("num_attention_heads", 12);
  b.intermediate = c.get_int("intermediate_size", 3072);
  b.max_positions = c.get_int("max_position_embeddings", 512);
  b.type_vocab_size = c.get_int("type_vocab_size", 2);
  b.eps = c.get_double("layer_norm_eps", 1e-12);
  b.act = c.get_string("hidden_act", "gelu");
  std::string pos_type = c.get_string("position_embedding_type", "absolute");
  if (pos_type != "absolute") {
    throw Error(ErrorCode::kUnsupported,
                fmt::format("{}: position_embedding_type '{}' is not supported (only 'absolute')", c.source(), pos_type));
  }
  if (c.get_bool("is_decoder", false)) {
    throw Error(ErrorCode::kUnsupported, fmt::format("{}: BERT as a decoder (is_decoder) is not supported", c.source()));
  }
  if (b.hidden <= 0 || b.n_heads <= 0 || b.hidden % b.n_heads != 0) {
    c.fail(fmt::format("hidden_size {} must be a positive multiple of num_attention_heads {}", b.hidden, b.n_heads));
  }
  activation_op(b.act, c.source());
  return b;
}

WeightSchema bert_schema(const BertConfig& b) {
  const int64_t h = b.hidden, f = b.intermediate;
  WeightSchema s;
  s.family = "bert";
  s.prefixes = {"", "bert.", "model."};
  s.anchor = "embeddings.word_embeddings.weight";
  s.tensors = {{"embeddings.word_embeddings.weight", {b.vocab_size, h}},
               {"embeddings.position_embeddings.weight", {b.max_positions, h}},
               {"embeddings.token_type_embeddings.weight", {b.type_vocab_size, h}},
               {"embeddings.LayerNorm.weight", {h}},
               {"embeddings.LayerNorm.bias", {h}}};
  for (int64_t i = 0; i < b.n_layers; ++i) {
    std::string p = fmt::format("encoder.layer.{}.", i);
    for (const char* proj : {"attention.self.query", "attention.self.key", "attention.self.value",
                             "attention.output.dense"}) {
      s.tensors.push_back({p + proj + ".weight", {h, h}});
      s.tensors.push_back({p + proj + ".bias", {h}});
    }
    s.tensors.push_back({p + "attention.output.LayerNorm.weight", {h}});
    s.tensors.push_back({p + "attention.output.LayerNorm.bias", {h}});
    s.tensors.push_back({p + "intermediate.dense.weight", {f, h}});
    s.tensors.push_back({p + "intermediate.dense.bias", {f}});
    s.tensors.push_back({p + "output.dense.weight", {h, f}});
    s.tensors.push_back({p + "output.dense.bias", {h}});
    s.tensors.push_back({p + "output.LayerNorm.weight", {h}});
    s.tensors.push_back({p + "output.LayerNorm.bias", {h}});
  }
  s.known_unused = {"pooler.*", "cls.*", "embeddings.position_ids", "*.attention.self.distance_embedding.*"};
  return s;
}

}  // namespace

BuiltModel build_bert(const io::HfConfig& config, const io::WeightStore& store) {
  const BertConfig cfg = parse_bert_config(config);
  const Weights w = Weights::bind(store, bert_schema(cfg));
  BuiltModel m;
  Builder b(m.graph, w);
  using graph::Dim;

  const int ids = b.input("input_ids", DType::kI64, {Dim::batch(), Dim::seq()});             // [B, S]
  const int positions = b.input("position_ids", DType::kI64, {Dim::batch(), Dim::seq()});    // [B, S]
  const int types = b.input("token_type_ids", DType::kI64, {Dim::batch(), Dim::seq()});      // [B, S]

  int x = b.embedding(b.weight("embeddings.word_embeddings.weight"), ids, "tok_embd");
  x = b.add(x, b.embedding(b.weight("embeddings.position_embeddings.weight"), positions, "pos_embd"), "embd_sum");
  x = b.add(x, b.embedding(b.weight("embeddings.token_type_embeddings.weight"), types, "type_embd"), "embd");
  x = b.layer_norm(x, b.weight("embeddings.LayerNorm.weight"), b.weight("embeddings.LayerNorm.bias"), cfg.eps,
                   "embd_norm");  // [B, S, H]

  const int64_t head_dim = cfg.hidden / cfg.n_heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  for (int64_t il = 0; il < cfg.n_layers; ++il) {
    const std::string p = fmt::format("encoder.layer.{}.", il);
    auto lin = [&](int in, const std::string& proj, const std::string& name) {
      return b.linear(in, b.weight(p + proj + ".weight"), b.weight(p + proj + ".bias"), fmt::format("{}.{}", name, il));
    };
    const int q = lin(x, "attention.self.query", "q");
    const int k = lin(x, "attention.self.key", "k");
    const int v = lin(x, "attention.self.value", "v");
    const int attn = b.attention(q, k, v, il, cfg.n_heads, cfg.n_heads, head_dim, /*causal=*/false, scale, 0,
                                 fmt::format("attn.{}", il));
    const int attn_out = lin(attn, "attention.output.dense", "attn_out");
    const int h = b.layer_norm(b.add(attn_out, x, fmt::format("attn_res.{}", il)),
                               b.weight(p + "attention.output.LayerNorm.weight"),
                               b.weight(p + "attention.output.LayerNorm.bias"), cfg.eps, fmt::format("attn_norm.{}", il));
    const int up = b.activation(cfg.act, lin(h, "intermediate.dense", "ffn_up"), fmt::format("ffn_act.{}", il));
    const int down = lin(up, "output.dense", "ffn_out");
    x = b.layer_norm(b.add(down, h, fmt::format("ffn_res.{}", il)), b.weight(p + "output.LayerNorm.weight"),
                     b.weight(p + "output.LayerNorm.bias"), cfg.eps, fmt::format("ffn_norm.{}", il));
  }
  m.graph.mark_output(x);  // last_hidden_state [B, S, H]

  auto archs = config.architectures();
  m.info.family = "bert";
  m.info.model_type = "bert";
  m.info.architecture = archs.empty() ? "BertModel" : archs[0];
  m.info.causal_lm = false;
  m.info.vocab_size = cfg.vocab_size;
  m.info.hidden_size = cfg.hidden;
  m.info.n_layers = cfg.n_layers;
  m.info.n_heads = cfg.n_heads;
  m.info.n_kv_heads = cfg.n_heads;
  m.info.head_dim = head_dim;
  m.info.max_positions = cfg.max_positions;
  m.info.type_vocab_size = cfg.type_vocab_size;
  m.info.pad_token_id = config.get_optional_int("pad_token_id");
  m.info.n_parameters = w.n_parameters();
  m.info.weights_dtype = w.stored_dtype();
  return m;
}

}  // namespace kpt::models
