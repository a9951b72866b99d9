#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backends/cpu/kernels/kernels.h"

namespace kpt::cpu {

namespace {
inline float* slot_ptr(float* pool, const SequenceView& s, int64_t pos, const AttentionContext& ctx) {
  const int64_t block = s.block_table[pos / ctx.block_size];
  const int64_t row = block * ctx.block_size + pos % ctx.block_size;
  return pool + row * ctx.n_kv_heads * ctx.head_dim;
}
}  // namespace

// Reference attention: materializes one row of scores at a time, softmax in double.
void paged_attention(const float* q, const float* k, const float* v, const AttentionContext& ctx, int64_t layer,
                     int64_t batch, int64_t seq, int64_t n_heads, bool causal, double scale, int64_t window,
                     float* out) {
  const int64_t n_kv = ctx.n_kv_heads, hd = ctx.head_dim, group = n_heads / n_kv;
  float* kp = ctx.k_pool[static_cast<size_t>(layer)];
  float* vp = ctx.v_pool[static_cast<size_t>(layer)];
  const size_t kv_row = static_cast<size_t>(n_kv * hd) * sizeof(float);
  for (int64_t b = 0; b < batch; ++b) {
    const SequenceView& s = ctx.seqs[static_cast<size_t>(b)];
    for (int64_t t = 0; t < seq; ++t) {
      std::memcpy(slot_ptr(kp, s, s.past_len + t, ctx), k + (b * seq + t) * n_kv * hd, kv_row);
      std::memcpy(slot_ptr(vp, s, s.past_len + t, ctx), v + (b * seq + t) * n_kv * hd, kv_row);
    }
  }
#pragma omp parallel for collapse(3) schedule(dynamic)
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < seq; ++t) {
      for (int64_t h = 0; h < n_heads; ++h) {
        const SequenceView& s = ctx.seqs[static_cast<size_t>(b)];
        const int64_t qpos = s.past_len + t;
        const int64_t n_keys = causal ? qpos + 1 : s.past_len + seq;
        const int64_t kvh = h / group;
        const float* qv = q + ((b * seq + t) * n_heads + h) * hd;
        float* o = out + ((b * seq + t) * n_heads + h) * hd;
        std::vector<double> scores(static_cast<size_t>(n_keys), -std::numeric_limits<double>::infinity());
        double max_score = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < n_keys; ++j) {
          if (!s.key_valid[j]) continue;
          if (window > 0 && qpos - j >= window) continue;
          const float* kv = slot_ptr(kp, s, j, ctx) + kvh * hd;
          double dot = 0;
          for (int64_t i = 0; i < hd; ++i) dot += static_cast<double>(qv[i]) * kv[i];
          scores[static_cast<size_t>(j)] = dot * scale;
          if (dot * scale > max_score) max_score = dot * scale;
        }
        std::vector<double> acc(static_cast<size_t>(hd), 0.0);
        if (max_score == -std::numeric_limits<double>::infinity()) {
          std::memset(o, 0, static_cast<size_t>(hd) * sizeof(float));
          continue;
        }
        double denom = 0;
        for (int64_t j = 0; j < n_keys; ++j) {
          if (scores[static_cast<size_t>(j)] == -std::numeric_limits<double>::infinity()) continue;
          const double p = std::exp(scores[static_cast<size_t>(j)] - max_score);
          denom += p;
          const float* vv = slot_ptr(vp, s, j, ctx) + kvh * hd;
          for (int64_t i = 0; i < hd; ++i) acc[static_cast<size_t>(i)] += p * vv[i];
        }
        for (int64_t i = 0; i < hd; ++i) o[i] = static_cast<float>(acc[static_cast<size_t>(i)] / denom);
      }
    }
  }
}

}  // namespace kpt::cpu
