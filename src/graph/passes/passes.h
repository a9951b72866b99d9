// Graph passes: each rewrites the graph in place and returns the lines of its report (what it
// changed, e.g. "packed QKV 12/12 layers"), empty when nothing applied. Passes run in the order
// optimize/levels.cc lists them; the fused op kinds they create run on the fast CPU executable.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace kpt::graph::passes {

using Report = std::vector<std::string>;

// rope(q), rope(k), attention(q, k, v) -> attention_fused(q, k, v, positions): one kernel that
// applies RoPE, writes the KV cache and attends with a tiled online softmax.
Report fuse_attention(Graph& g);
// Three linears of one input feeding an attention_fused -> one GEMM over packed [Wq; Wk; Wv].
Report fuse_qkv(Graph& g);
// act(linear_gate(x)) * linear_up(x) -> glu(linear([Wg; Wu])(x)).
Report fuse_glu(Graph& g);
// norm(a + b) where the sum has no other reader -> add_norm(a, b).
Report fuse_residual_norm(Graph& g);
// linear -> activation and linear -> add(residual) -> linear_fused with GEMM post-ops.
Report fuse_epilogue(Graph& g);
// Marks every linear not taken by an int8 pass with "bf16" (run in bf16 with fp32 accumulation
// by the fast CPU executable). Only levels.cc's decision (native bf16 CPU, opt-in) calls it.
Report mark_bf16(Graph& g);
// Assigns every intermediate value a reusable buffer ("slot" attribute on its node).
Report memory_plan(Graph& g);
// Weight-only int8 (symmetric, one scale per kInt8Group inputs of an output channel) for linears;
// records the int8 weights [out, in] and scales [out, ceil(in / kInt8Group)] as "w_int8" /
// "w_scale" attributes (value ids) and swaps the f32 weight for its dequantized copy.
constexpr int64_t kInt8Group = 32;
Report quantize_int8(Graph& g);
// True when the graph has attention and all of it is bidirectional (an encoder).
bool is_encoder(const Graph& g);
// Encoders with KPT_INT8_COMPUTE=1 in the environment only (outside the accuracy budget on
// MiniLM, see quantize_int8_dynamic.cc): int8 compute. Each linear gets "w_q8" (int8 [out, in], |q| <= kInt8DynamicWeightMax)
// and "w_q8_scale" (f32 [out]); the fast executable quantizes activations per token at run time.
constexpr int64_t kInt8DynamicWeightMax = 63;
Report quantize_int8_dynamic(Graph& g);
bool int8_compute_enabled(const Graph& g);

}  // namespace kpt::graph::passes
