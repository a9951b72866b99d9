// Tiled attention with online softmax over the paged KV cache (prefill and decode, GQA).
// Work item = (sequence, KV head, tile of kTileQ query tokens): the tile's group * kTileQ query
// rows stay in L1 with their running max / sum / output while the cache is streamed one block
// (block_size tokens) at a time, so each key is read once per tile and no [S, S] score matrix
// exists. Visibility (padding, causality, sliding window) is decided per key as in the reference.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backends/cpu/kernels/fast_kernels.h"

namespace kpt::cpu::fast {

namespace {

constexpr int64_t kTileQ = 16;

inline float* slot_ptr(float* pool, const SequenceView& s, int64_t pos, const AttentionContext& ctx) {
  const int64_t block = s.block_table[pos / ctx.block_size];
  return pool + (block * ctx.block_size + pos % ctx.block_size) * ctx.n_kv_heads * ctx.head_dim;
}

// x [hd] rotated in place-style into out with the token's cos/sin (rotate-half layout, the same
// float arithmetic as the reference rope kernel).
inline void rotate(const float* x, const float* cs, const float* sn, int64_t hd, float* out) {
  const int64_t half = hd / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float a = x[i], b = x[i + half];
    out[i] = a * cs[i] - b * sn[i];
    out[i + half] = b * cs[i] + a * sn[i];
  }
}

// One query row against n keys of one cache block: online-softmax update of (m, l, acc).
__attribute__((target_clones("arch=x86-64-v3", "default"))) void row_block(
    const float* q, const float* const* keys, const float* const* vals, const uint8_t* visible, int64_t n,
    int64_t hd, float scale, float& m, float& l, float* acc) {
  float s[64];
  float bmax = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n; ++j) {
    if (!visible[j]) {
      s[j] = -std::numeric_limits<float>::infinity();
      continue;
    }
    const float* k = keys[j];
    float dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t i = 0; i < hd; ++i) dot += q[i] * k[i];
    s[j] = dot * scale;
    bmax = std::max(bmax, s[j]);
  }
  if (bmax == -std::numeric_limits<float>::infinity()) return;
  const float m_new = std::max(m, bmax);
  const float corr = std::exp(m - m_new);  // 0 on the first visible block (m = -inf)
  l *= corr;
#pragma omp simd
  for (int64_t i = 0; i < hd; ++i) acc[i] *= corr;
  for (int64_t j = 0; j < n; ++j) {
    if (!visible[j]) continue;
    const float p = std::exp(s[j] - m_new);
    l += p;
    const float* v = vals[j];
#pragma omp simd
    for (int64_t i = 0; i < hd; ++i) acc[i] += p * v[i];
  }
  m = m_new;
}

}  // namespace

void attention_tiled(const AttentionArgs& a, const AttentionContext& ctx) {
  const int64_t n_kv = ctx.n_kv_heads, hd = ctx.head_dim, group = a.n_heads / n_kv, half = hd / 2;
  const int64_t bs = ctx.block_size, tokens = a.batch * a.seq;
  KPT_CHECK(bs <= 64, "attention_tiled: block_size above 64");
  float* kp = ctx.k_pool[static_cast<size_t>(a.layer)];
  float* vp = ctx.v_pool[static_cast<size_t>(a.layer)];
  const bool rope = a.positions != nullptr;

  // cos/sin per token [tokens, half], angle formed in float as transformers does.
  std::vector<float> cos_t, sin_t;
  if (rope) {
    cos_t.resize(static_cast<size_t>(tokens * half));
    sin_t.resize(static_cast<size_t>(tokens * half));
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tokens; ++t) {
      const float pos = static_cast<float>(a.positions[t]);
      for (int64_t i = 0; i < half; ++i) {
        const float angle = pos * static_cast<float>(a.inv_freq[i]);
        cos_t[static_cast<size_t>(t * half + i)] = std::cos(angle);
        sin_t[static_cast<size_t>(t * half + i)] = std::sin(angle);
      }
    }
  }

  // 1. This step's K (rotated) and V into the cache.
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t b = t / a.seq, s = t % a.seq;
    const SequenceView& sv = ctx.seqs[static_cast<size_t>(b)];
    float* kd = slot_ptr(kp, sv, sv.past_len + s, ctx);
    float* vd = slot_ptr(vp, sv, sv.past_len + s, ctx);
    for (int64_t h = 0; h < n_kv; ++h) {
      const float* ks = a.k + t * a.kv_stride + h * hd;
      if (rope) {
        rotate(ks, &cos_t[static_cast<size_t>(t * half)], &sin_t[static_cast<size_t>(t * half)], hd, kd + h * hd);
      } else {
        std::memcpy(kd + h * hd, ks, static_cast<size_t>(hd) * sizeof(float));
      }
      std::memcpy(vd + h * hd, a.v + t * a.kv_stride + h * hd, static_cast<size_t>(hd) * sizeof(float));
    }
  }

  // 2. Attend, one (sequence, KV head, query tile) per work item.
  const int64_t n_tiles = (a.seq + kTileQ - 1) / kTileQ;
  const float scale = static_cast<float>(a.scale);
#pragma omp parallel
  {
    const int64_t rows_max = kTileQ * group;
    std::vector<float> qbuf(static_cast<size_t>(rows_max * hd)), acc(static_cast<size_t>(rows_max * hd));
    std::vector<float> m(static_cast<size_t>(rows_max)), l(static_cast<size_t>(rows_max));
    std::vector<const float*> keys(static_cast<size_t>(bs)), vals(static_cast<size_t>(bs));
    std::vector<uint8_t> vis(static_cast<size_t>(bs));
#pragma omp for collapse(3) schedule(dynamic)
    for (int64_t b = 0; b < a.batch; ++b) {
      for (int64_t kvh = 0; kvh < n_kv; ++kvh) {
        for (int64_t tile = 0; tile < n_tiles; ++tile) {
          const SequenceView& sv = ctx.seqs[static_cast<size_t>(b)];
          const int64_t t0 = tile * kTileQ, t1 = std::min(a.seq, t0 + kTileQ), nt = t1 - t0;
          const int64_t rows = nt * group;
          // Query rows ordered (token, head in group); rotated copies in qbuf.
          for (int64_t t = t0; t < t1; ++t) {
            const int64_t tok = b * a.seq + t;
            for (int64_t g = 0; g < group; ++g) {
              const float* src = a.q + tok * a.q_stride + (kvh * group + g) * hd;
              float* dst = &qbuf[static_cast<size_t>(((t - t0) * group + g) * hd)];
              if (rope) {
                rotate(src, &cos_t[static_cast<size_t>(tok * half)], &sin_t[static_cast<size_t>(tok * half)], hd, dst);
              } else {
                std::memcpy(dst, src, static_cast<size_t>(hd) * sizeof(float));
              }
            }
          }
          std::fill(m.begin(), m.begin() + rows, -std::numeric_limits<float>::infinity());
          std::fill(l.begin(), l.begin() + rows, 0.0f);
          std::fill(acc.begin(), acc.begin() + rows * hd, 0.0f);
          const int64_t last_q = sv.past_len + t1 - 1;
          const int64_t n_keys = a.causal ? last_q + 1 : sv.past_len + a.seq;
          int64_t first_key = 0;
          if (a.window > 0) first_key = std::max<int64_t>(0, sv.past_len + t0 - a.window + 1);
          for (int64_t j0 = first_key - first_key % bs; j0 < n_keys; j0 += bs) {
            const int64_t j1 = std::min(n_keys, j0 + bs);
            for (int64_t j = j0; j < j1; ++j) {
              keys[static_cast<size_t>(j - j0)] = slot_ptr(kp, sv, j, ctx) + kvh * hd;
              vals[static_cast<size_t>(j - j0)] = slot_ptr(vp, sv, j, ctx) + kvh * hd;
            }
            for (int64_t t = t0; t < t1; ++t) {
              const int64_t qpos = sv.past_len + t;
              for (int64_t j = j0; j < j1; ++j) {
                bool ok = sv.key_valid[j] != 0;
                if (a.causal && j > qpos) ok = false;
                if (a.window > 0 && qpos - j >= a.window) ok = false;
                vis[static_cast<size_t>(j - j0)] = ok;
              }
              for (int64_t g = 0; g < group; ++g) {
                const int64_t r = (t - t0) * group + g;
                row_block(&qbuf[static_cast<size_t>(r * hd)], keys.data(), vals.data(), vis.data(), j1 - j0, hd, scale,
                          m[static_cast<size_t>(r)], l[static_cast<size_t>(r)], &acc[static_cast<size_t>(r * hd)]);
              }
            }
          }
          for (int64_t t = t0; t < t1; ++t) {
            for (int64_t g = 0; g < group; ++g) {
              const int64_t r = (t - t0) * group + g;
              float* o = a.out + ((b * a.seq + t) * a.n_heads + kvh * group + g) * hd;
              const float li = l[static_cast<size_t>(r)];
              const float inv = li > 0 ? 1.0f / li : 0.0f;  // no visible key: zeros, as the reference
              for (int64_t i = 0; i < hd; ++i) o[i] = acc[static_cast<size_t>(r * hd + i)] * inv;
            }
          }
        }
      }
    }
  }
}

}  // namespace kpt::cpu::fast
