// LLaMA family (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM): RMSNorm pre-norm
// blocks, rotary positions (default / linear / llama3 scaling), grouped-query attention with an
// explicit head_dim, SwiGLU MLP. The three model types differ only in which biases exist and in
// their defaults, written in family_traits() below.
#include <cmath>

#include <fmt/format.h>

#include "models/common.h"

namespace kpt::models {

namespace {

struct LlamaConfig {
  std::string model_type;
  int64_t vocab_size, hidden, n_layers, n_heads, n_kv_heads, head_dim, intermediate, max_positions;
  double eps;
  std::string act;
  bool qkv_bias, o_bias, mlp_bias, tied;
  RopeConfig rope;
  std::vector<int64_t> window_per_layer;  // 0: full attention
};

struct FamilyTraits {
  double default_theta;
  double default_eps;
  bool has_attention_bias_key;  // llama: attention_bias toggles q/k/v/o bias
  bool fixed_qkv_bias;          // qwen2: q/k/v always biased, o never
  bool has_mlp_bias_key;        // llama: mlp_bias
};

FamilyTraits family_traits(const std::string& model_type) {
  if (model_type == "llama") return {10000.0, 1e-6, true, false, true};
  if (model_type == "mistral") return {10000.0, 1e-6, false, false, false};
  if (model_type == "qwen2") return {10000.0, 1e-6, false, true, false};
  throw Error(ErrorCode::kInternal, "llama.cc: unexpected model_type " + model_type);
}

LlamaConfig parse_llama_config(const io::HfConfig& c) {
  LlamaConfig l{};
  l.model_type = c.model_type();
  const FamilyTraits t = family_traits(l.model_type);
  l.vocab_size = c.get_int("vocab_size");
  l.hidden = c.get_int("hidden_size");
  l.n_layers = c.get_int("num_hidden_layers");
  l.n_heads = c.get_int("num_attention_heads");
  l.n_kv_heads = c.get_int("num_key_value_heads", l.n_heads);
  if (l.hidden <= 0 || l.n_heads <= 0 || l.n_kv_heads <= 0) c.fail("hidden_size and head counts must be positive");
  l.head_dim = c.get_int("head_dim", l.hidden / l.n_heads);
  l.intermediate = c.get_int("intermediate_size");
  l.max_positions = c.get_int("max_position_embeddings", 0);
  l.eps = c.get_double("rms_norm_eps", t.default_eps);
  l.act = c.get_string("hidden_act", "silu");
  l.tied = c.get_bool("tie_word_embeddings", false);
  bool attention_bias = t.has_attention_bias_key && c.get_bool("attention_bias", false);
  l.qkv_bias = t.fixed_qkv_bias || attention_bias;
  l.o_bias = attention_bias;
  l.mlp_bias = t.has_mlp_bias_key && c.get_bool("mlp_bias", false);
  if (l.n_heads % l.n_kv_heads != 0) {
    c.fail(fmt::format("num_attention_heads {} must be a multiple of num_key_value_heads {}", l.n_heads, l.n_kv_heads));
  }
  if (l.head_dim <= 0 || l.head_dim % 2 != 0) c.fail(fmt::format("head_dim {} must be positive and even", l.head_dim));
  if (c.has("partial_rotary_factor") && c.get_double("partial_rotary_factor") != 1.0) {
    throw Error(ErrorCode::kUnsupported, fmt::format("{}: partial_rotary_factor != 1 is not supported", c.source()));
  }
  activation_op(l.act, c.source());
  l.rope = parse_rope_config(c, t.default_theta);

  // Sliding windows: mistral's sliding_window applies to every layer; qwen2 only when
  // use_sliding_window is set, from layer max_window_layers on; transformers 5 states it per
  // layer in layer_types.
  int64_t window = c.get_int("sliding_window", 0);
  l.window_per_layer.assign(static_cast<size_t>(l.n_layers), 0);
  if (c.has("layer_types")) {
    const auto& types = c.raw().at("layer_types");
    if (!types.is_array() || static_cast<int64_t>(types.size()) != l.n_layers) {
      c.fail(fmt::format("layer_types must list {} entries", l.n_layers));
    }
    for (int64_t i = 0; i < l.n_layers; ++i) {
      const auto& s = types[static_cast<size_t>(i)];
      if (!s.is_string()) c.fail("layer_types entries must be strings");
      if (s.get<std::string>() == "sliding_attention") {
        if (window <= 0) c.fail("layer_types has sliding_attention but sliding_window is not set");
        l.window_per_layer[static_cast<size_t>(i)] = window;
      } else if (s.get<std::string>() != "full_attention") {
        c.fail(fmt::format("unknown layer type '{}'", s.get<std::string>()));
      }
    }
  } else if (window > 0) {
    bool use = l.model_type == "mistral" || c.get_bool("use_sliding_window", false);
    int64_t first = l.model_type == "qwen2" ? c.get_int("max_window_layers", 0) : 0;
    for (int64_t i = first; use && i < l.n_layers; ++i) l.window_per_layer[static_cast<size_t>(i)] = window;
  }
  return l;
}

WeightSchema llama_schema(const LlamaConfig& l) {
  const int64_t h = l.hidden, q = l.n_heads * l.head_dim, kv = l.n_kv_heads * l.head_dim, f = l.intermediate;
  WeightSchema s;
  s.family = l.model_type;
  s.prefixes = {"model.", ""};
  s.anchor = "embed_tokens.weight";
  s.tensors = {{"embed_tokens.weight", {l.vocab_size, h}}, {"norm.weight", {h}}};
  for (int64_t i = 0; i < l.n_layers; ++i) {
    std::string p = fmt::format("layers.{}.", i);
    s.tensors.push_back({p + "input_layernorm.weight", {h}});
    s.tensors.push_back({p + "post_attention_layernorm.weight", {h}});
    s.tensors.push_back({p + "self_attn.q_proj.weight", {q, h}});
    s.tensors.push_back({p + "self_attn.k_proj.weight", {kv, h}});
    s.tensors.push_back({p + "self_attn.v_proj.weight", {kv, h}});
    s.tensors.push_back({p + "self_attn.o_proj.weight", {h, q}});
    if (l.qkv_bias) {
      s.tensors.push_back({p + "self_attn.q_proj.bias", {q}});
      s.tensors.push_back({p + "self_attn.k_proj.bias", {kv}});
      s.tensors.push_back({p + "self_attn.v_proj.bias", {kv}});
    }
    if (l.o_bias) s.tensors.push_back({p + "self_attn.o_proj.bias", {h}});
    s.tensors.push_back({p + "mlp.gate_proj.weight", {f, h}});
    s.tensors.push_back({p + "mlp.up_proj.weight", {f, h}});
    s.tensors.push_back({p + "mlp.down_proj.weight", {h, f}});
    if (l.mlp_bias) {
      s.tensors.push_back({p + "mlp.gate_proj.bias", {f}});
      s.tensors.push_back({p + "mlp.up_proj.bias", {f}});
      s.tensors.push_back({p + "mlp.down_proj.bias", {h}});
    }
  }
  s.known_unused = {"layers.*.self_attn.rotary_emb.inv_freq"};
  if (l.tied) {
    s.known_unused.push_back("lm_head.weight");  // some tied checkpoints still store it
  } else {
    s.tensors.push_back({"lm_head.weight", {l.vocab_size, h}, false, true});
  }
  return s;
}

}  // namespace

BuiltModel build_llama(const io::HfConfig& config, const io::WeightStore& store) {
  const LlamaConfig cfg = parse_llama_config(config);
  const Weights w = Weights::bind(store, llama_schema(cfg));
  BuiltModel m;
  Builder b(m.graph, w);
  using graph::Dim;

  const int ids = b.input("input_ids", DType::kI64, {Dim::batch(), Dim::seq()});           // [B, S]
  const int positions = b.input("position_ids", DType::kI64, {Dim::batch(), Dim::seq()});  // [B, S]
  const int rows = b.input("logit_rows", DType::kI64, {Dim::batch(), Dim::rows()});        // [B, R]

  const std::vector<double> inv_freq = rope_inv_freq(cfg.rope, cfg.head_dim);
  const double scale = 1.0 / std::sqrt(static_cast<double>(cfg.head_dim));
  const int embed = b.weight("embed_tokens.weight");  // [V, H]
  int x = b.embedding(embed, ids, "tok_embd");        // [B, S, H]

  for (int64_t il = 0; il < cfg.n_layers; ++il) {
    const std::string p = fmt::format("layers.{}.", il);
    auto proj = [&](int in, const std::string& name, const std::string& out) {
      return b.linear(in, b.weight(p + name + ".weight"), b.maybe_weight(p + name + ".bias"), fmt::format("{}.{}", out, il));
    };
    const int cur = b.rms_norm(x, b.weight(p + "input_layernorm.weight"), cfg.eps, fmt::format("attn_norm.{}", il));
    int q = proj(cur, "self_attn.q_proj", "q");  // [B, S, n_heads * head_dim]
    int k = proj(cur, "self_attn.k_proj", "k");  // [B, S, n_kv_heads * head_dim]
    const int v = proj(cur, "self_attn.v_proj", "v");
    q = b.rope(q, positions, cfg.n_heads, cfg.head_dim, inv_freq, fmt::format("q_rope.{}", il));
    k = b.rope(k, positions, cfg.n_kv_heads, cfg.head_dim, inv_freq, fmt::format("k_rope.{}", il));
    const int attn = b.attention(q, k, v, il, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, true, scale,
                                 cfg.window_per_layer[static_cast<size_t>(il)], fmt::format("attn.{}", il));
    x = b.add(x, proj(attn, "self_attn.o_proj", "attn_out"), fmt::format("attn_res.{}", il));

    const int n2 = b.rms_norm(x, b.weight(p + "post_attention_layernorm.weight"), cfg.eps, fmt::format("ffn_norm.{}", il));
    const int gate = b.activation(cfg.act, proj(n2, "mlp.gate_proj", "ffn_gate"), fmt::format("ffn_gate_act.{}", il));
    const int up = proj(n2, "mlp.up_proj", "ffn_up");
    const int down = proj(b.mul(gate, up, fmt::format("ffn_glu.{}", il)), "mlp.down_proj", "ffn_out");
    x = b.add(x, down, fmt::format("ffn_res.{}", il));
  }
  x = b.rms_norm(x, b.weight("norm.weight"), cfg.eps, "out_norm");  // [B, S, H]
  x = b.gather_rows(x, rows, "out_rows");                           // [B, R, H]
  int head = embed;
  if (!cfg.tied) head = b.weight("lm_head.weight");
  m.graph.mark_output(b.linear(x, head, -1, "logits"));  // [B, R, V]

  auto archs = config.architectures();
  m.info.family = "llama";
  m.info.model_type = cfg.model_type;
  m.info.architecture = archs.empty() ? "LlamaForCausalLM" : archs[0];
  m.info.causal_lm = true;
  m.info.vocab_size = cfg.vocab_size;
  m.info.hidden_size = cfg.hidden;
  m.info.n_layers = cfg.n_layers;
  m.info.n_heads = cfg.n_heads;
  m.info.n_kv_heads = cfg.n_kv_heads;
  m.info.head_dim = cfg.head_dim;
  m.info.max_positions = 0;  // RoPE has no table; max_position_embeddings is advisory
  m.info.eos_token_ids = config.get_int_list("eos_token_id");
  m.info.bos_token_id = config.get_optional_int("bos_token_id");
  m.info.pad_token_id = config.get_optional_int("pad_token_id");
  m.info.n_parameters = w.n_parameters();
  m.info.weights_dtype = w.stored_dtype();
  return m;
}

}  // namespace kpt::models
