// GPT-2 (GPT2LMHeadModel): learned positions, pre-LN blocks, Conv1D weights stored [in, out],
// fused c_attn split into Q/K/V at load, LM head tied to wte unless lm_head.weight is given.
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "models/common.h"

namespace kpt::models {

namespace {

struct Gpt2Config {
  int64_t vocab_size, hidden, n_layers, n_heads, inner, n_positions;
  double eps;
  std::string act;
  bool scale_attn_weights, scale_by_inverse_layer_idx;
};

Gpt2Config parse_gpt2_config(const io::HfConfig& c) {
  Gpt2Config g{};
  g.vocab_size = c.get_int("vocab_size", 50257);
  g.hidden = c.get_int("n_embd", 768);
  g.n_layers = c.get_int("n_layer", 12);
  g.n_heads = c.get_int("n_head", 12);
  g.inner = c.get_int("n_inner", 4 * g.hidden);  // null means 4 * n_embd
  g.n_positions = c.get_int("n_positions", 1024);
  g.eps = c.get_double("layer_norm_epsilon", 1e-5);
  g.act = c.get_string("activation_function", "gelu_new");
  g.scale_attn_weights = c.get_bool("scale_attn_weights", true);
  g.scale_by_inverse_layer_idx = c.get_bool("scale_attn_by_inverse_layer_idx", false);
  if (c.get_bool("add_cross_attention", false)) {
    throw Error(ErrorCode::kUnsupported, fmt::format("{}: GPT-2 with cross-attention is not supported", c.source()));
  }
  if (g.hidden <= 0 || g.n_heads <= 0 || g.hidden % g.n_heads != 0) {
    c.fail(fmt::format("n_embd {} must be a positive multiple of n_head {}", g.hidden, g.n_heads));
  }
  activation_op(g.act, c.source());
  return g;
}

WeightSchema gpt2_schema(const Gpt2Config& g, bool tied) {
  const int64_t h = g.hidden, f = g.inner;
  WeightSchema s;
  s.family = "gpt2";
  s.prefixes = {"transformer.", ""};
  s.anchor = "wte.weight";
  s.tensors = {{"wte.weight", {g.vocab_size, h}}, {"wpe.weight", {g.n_positions, h}}, {"ln_f.weight", {h}},
               {"ln_f.bias", {h}}};
  for (int64_t i = 0; i < g.n_layers; ++i) {
    std::string p = fmt::format("h.{}.", i);
    s.tensors.push_back({p + "ln_1.weight", {h}});
    s.tensors.push_back({p + "ln_1.bias", {h}});
    s.tensors.push_back({p + "attn.c_attn.weight", {h, 3 * h}});  // Conv1D: [in, out]
    s.tensors.push_back({p + "attn.c_attn.bias", {3 * h}});
    s.tensors.push_back({p + "attn.c_proj.weight", {h, h}});
    s.tensors.push_back({p + "attn.c_proj.bias", {h}});
    s.tensors.push_back({p + "ln_2.weight", {h}});
    s.tensors.push_back({p + "ln_2.bias", {h}});
    s.tensors.push_back({p + "mlp.c_fc.weight", {h, f}});
    s.tensors.push_back({p + "mlp.c_fc.bias", {f}});
    s.tensors.push_back({p + "mlp.c_proj.weight", {f, h}});
    s.tensors.push_back({p + "mlp.c_proj.bias", {h}});
  }
  s.known_unused = {"h.*.attn.bias", "h.*.attn.masked_bias"};
  if (tied) {
    s.known_unused.push_back("lm_head.weight");  // a copy of wte in some checkpoints
  } else {
    s.tensors.push_back({"lm_head.weight", {g.vocab_size, h}, false, true});
  }
  return s;
}

// Rows [begin, begin + n) of a row-major [rows, cols] f32 matrix (or a slice of a vector).
Tensor slice_rows(const Tensor& t, int64_t begin, int64_t n) {
  const int64_t cols = t.rank() == 2 ? t.dim(1) : 1;
  Shape shape = t.rank() == 2 ? Shape{n, cols} : Shape{n};
  Tensor out = Tensor::empty(DType::kF32, shape);
  std::memcpy(out.raw(), t.data<float>() + begin * cols, static_cast<size_t>(n * cols) * sizeof(float));
  return out;
}

}  // namespace

BuiltModel build_gpt2(const io::HfConfig& config, const io::WeightStore& store) {
  const Gpt2Config cfg = parse_gpt2_config(config);
  // GPT2LMHeadModel ties lm_head to wte unless tie_word_embeddings is false.
  const bool tied = config.get_bool("tie_word_embeddings", true);
  const Weights w = Weights::bind(store, gpt2_schema(cfg, tied));
  BuiltModel m;
  Builder b(m.graph, w);
  using graph::Dim;
  const int64_t h = cfg.hidden, head_dim = h / cfg.n_heads;

  const int ids = b.input("input_ids", DType::kI64, {Dim::batch(), Dim::seq()});           // [B, S]
  const int positions = b.input("position_ids", DType::kI64, {Dim::batch(), Dim::seq()});  // [B, S]
  const int rows = b.input("logit_rows", DType::kI64, {Dim::batch(), Dim::rows()});        // [B, R]

  const int wte = b.weight("wte.weight");  // [V, H], also the tied LM head
  int x = b.add(b.embedding(wte, ids, "tok_embd"), b.embedding(b.weight("wpe.weight"), positions, "pos_embd"), "embd");

  for (int64_t il = 0; il < cfg.n_layers; ++il) {
    const std::string p = fmt::format("h.{}.", il);
    const int cur = b.layer_norm(x, b.weight(p + "ln_1.weight"), b.weight(p + "ln_1.bias"), cfg.eps,
                                 fmt::format("attn_norm.{}", il));
    // c_attn [H, 3H] holds Q|K|V along its output axis; split into three [H, H] projections.
    const int qkv_w = b.weight_transposed(p + "attn.c_attn.weight");  // [3H, H]
    const Tensor qkv = m.graph.value(qkv_w).constant;  // a copy: adding weights moves values
    const Tensor qkv_b = w.get(p + "attn.c_attn.bias");               // [3H]
    int proj[3];
    const char* names[3] = {"q", "k", "v"};
    for (int j = 0; j < 3; ++j) {
      int wj = b.weight_tensor(fmt::format("{}attn.{}.weight", p, names[j]), slice_rows(qkv, j * h, h));
      int bj = b.weight_tensor(fmt::format("{}attn.{}.bias", p, names[j]), slice_rows(qkv_b, j * h, h));
      proj[j] = b.linear(cur, wj, bj, fmt::format("{}.{}", names[j], il));
    }
    double scale = cfg.scale_attn_weights ? 1.0 / std::sqrt(static_cast<double>(head_dim)) : 1.0;
    if (cfg.scale_by_inverse_layer_idx) scale /= static_cast<double>(il + 1);
    const int attn = b.attention(proj[0], proj[1], proj[2], il, cfg.n_heads, cfg.n_heads, head_dim, true, scale, 0,
                                 fmt::format("attn.{}", il));
    const int attn_out = b.linear(attn, b.weight_transposed(p + "attn.c_proj.weight"), b.weight(p + "attn.c_proj.bias"),
                                  fmt::format("attn_out.{}", il));
    x = b.add(x, attn_out, fmt::format("attn_res.{}", il));
    const int n2 = b.layer_norm(x, b.weight(p + "ln_2.weight"), b.weight(p + "ln_2.bias"), cfg.eps,
                                fmt::format("ffn_norm.{}", il));
    const int up = b.linear(n2, b.weight_transposed(p + "mlp.c_fc.weight"), b.weight(p + "mlp.c_fc.bias"),
                            fmt::format("ffn_up.{}", il));
    const int act = b.activation(cfg.act, up, fmt::format("ffn_act.{}", il));
    const int down = b.linear(act, b.weight_transposed(p + "mlp.c_proj.weight"), b.weight(p + "mlp.c_proj.bias"),
                              fmt::format("ffn_out.{}", il));
    x = b.add(x, down, fmt::format("ffn_res.{}", il));
  }
  x = b.layer_norm(x, b.weight("ln_f.weight"), b.weight("ln_f.bias"), cfg.eps, "out_norm");  // [B, S, H]
  x = b.gather_rows(x, rows, "out_rows");                                                     // [B, R, H]

  const int head = tied ? wte : b.weight("lm_head.weight");
  m.graph.mark_output(b.linear(x, head, -1, "logits"));  // [B, R, V]

  auto archs = config.architectures();
  m.info.family = "gpt2";
  m.info.model_type = "gpt2";
  m.info.architecture = archs.empty() ? "GPT2LMHeadModel" : archs[0];
  m.info.causal_lm = true;
  m.info.vocab_size = cfg.vocab_size;
  m.info.hidden_size = h;
  m.info.n_layers = cfg.n_layers;
  m.info.n_heads = cfg.n_heads;
  m.info.n_kv_heads = cfg.n_heads;
  m.info.head_dim = head_dim;
  m.info.max_positions = cfg.n_positions;
  m.info.eos_token_ids = config.get_int_list("eos_token_id");
  m.info.bos_token_id = config.get_optional_int("bos_token_id");
  m.info.pad_token_id = config.get_optional_int("pad_token_id");
  m.info.n_parameters = w.n_parameters();
  m.info.weights_dtype = w.stored_dtype();
  return m;
}

}  // namespace kpt::models
