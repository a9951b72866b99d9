// Reference CPU kernels, fp32. Each takes raw pointers and sizes; shape checks are done by the
// caller (the executor). Threaded with the process-wide OpenMP pool.
#pragma once

#include <cstdint>

#include "backends/cpu/backend.h"

namespace kpt::cpu {

// out[i, :] = table[ids[i], :]      table [vocab, dim], ids [n], out [n, dim]
void embedding(const float* table, int64_t dim, const int64_t* ids, int64_t n, float* out);

void add(const float* a, const float* b, int64_t n, float* out);
void mul(const float* a, const float* b, int64_t n, float* out);
void gelu_erf(const float* x, int64_t n, float* out);
void gelu_tanh(const float* x, int64_t n, float* out);
void silu(const float* x, int64_t n, float* out);
void relu(const float* x, int64_t n, float* out);

// x [rows, dim]
void layer_norm(const float* x, const float* gamma, const float* beta, int64_t rows, int64_t dim, double eps, float* out);
void rms_norm(const float* x, const float* gamma, int64_t rows, int64_t dim, double eps, float* out);

// out [rows, n_out] = x [rows, n_in] . w[n_out, n_in]^T + bias [n_out] (bias may be null)
void linear(const float* x, const float* w, const float* bias, int64_t rows, int64_t n_in, int64_t n_out, float* out);

// Rotary embedding, rotate-half layout: x [tokens, n_heads, head_dim], positions [tokens].
void rope(const float* x, const int64_t* positions, int64_t tokens, int64_t n_heads, int64_t head_dim,
          const double* inv_freq, float* out);

// Writes this step's K/V into the cache of `layer`, then attends. q/out [B, S, n_heads, head_dim],
// k/v [B, S, n_kv_heads, head_dim]. Keys that are padding, in the future (causal) or outside the
// window are skipped; a query with no visible key gets zeros.
void paged_attention(const float* q, const float* k, const float* v, const AttentionContext& ctx, int64_t layer,
                     int64_t batch, int64_t seq, int64_t n_heads, bool causal, double scale, int64_t window,
                     float* out);

// out [B, R, H] = x[b, rows[b, r], :]
void gather_rows(const float* x, const int64_t* rows, int64_t batch, int64_t seq, int64_t n_rows, int64_t dim,
                 float* out);

}  // namespace kpt::cpu
