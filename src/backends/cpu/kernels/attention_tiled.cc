// Tiled attention with online softmax over the paged KV cache (prefill and decode, GQA).
// Work item = (sequence, KV head, tile of kTileQ query tokens): the tile's group * kTileQ query
// rows stay in L1 with their running max / sum / output while the cache is streamed one block
// (block_size tokens) at a time, so each key is read once per tile and no [S, S] score matrix
// exists. Visibility (padding, causality, sliding window) is decided per key as in the reference.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <immintrin.h>

#include "backends/cpu/kernels/fast_exp.h"
#include "backends/cpu/kernels/fast_kernels.h"

namespace kpt::cpu::fast {

namespace {

constexpr int64_t kTileQ = 16;
// Longest prefill the dense path takes (its score row, [hd][S] keys and [S][hd] values per thread).
constexpr int64_t kDenseMaxKeys = 2048;
constexpr int64_t kDenseChunk = 64;

inline float* slot_ptr(float* pool, const SequenceView& s, int64_t pos,
                       const AttentionContext& ctx) {
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

// exp(x) for x <= 0 (fast_exp.h: the shared polynomial, relative error ~2e-7).
// always_inline: compiled inside each target clone of its caller, with that clone's ISA.
__attribute__((always_inline)) inline float exp_neg(float x) { return exp_poly(std::max(x, -87.0f)); }


// acc[0, hd) = corr * acc + sum_j p[j] v_j, with up to 32 outputs held in four registers across
// all keys of the block (GCC left this update scalar in the AVX2 clone: perf showed it as the
// hottest loop). hd must be a multiple of 8.
__attribute__((target("avx2,fma"))) void pv_avx2(const float* p, const float* const* vals,
                                                 int64_t n, int64_t hd, float corr, float* acc) {
  const __m256 c = _mm256_set1_ps(corr);
  for (int64_t i0 = 0; i0 < hd; i0 += 32) {
    const int64_t w = std::min<int64_t>(32, hd - i0);
    __m256 a[4];
    for (int k = 0; k < 4; ++k) {
      a[k] = 8 * k < w ? _mm256_mul_ps(c, _mm256_loadu_ps(acc + i0 + 8 * k)) : _mm256_setzero_ps();
    }
    for (int64_t j = 0; j < n; ++j) {
      if (p[j] == 0.0f) continue;
      const __m256 pj = _mm256_set1_ps(p[j]);
      const float* v = vals[j] + i0;
      a[0] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v), a[0]);
      if (w > 8) a[1] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + 8), a[1]);
      if (w > 16) a[2] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + 16), a[2]);
      if (w > 24) a[3] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + 24), a[3]);
    }
    for (int k = 0; k < 4; ++k) {
      if (8 * k < w) _mm256_storeu_ps(acc + i0 + 8 * k, a[k]);
    }
  }
}

// The query rows of one tile against one cache block of n keys: online-softmax update of each
// row's (m, l, acc). kt is the block's keys transposed [hd][n], so scores for all n keys of a
// row accumulate as vector FMAs across keys (no horizontal sums). bias[r / group][j] is 0 for a
// key row r may see and -inf otherwise. N > 0 fixes n at compile time (the cache's 16-token
// blocks), which lets the scores live in registers.
template <int N>
__attribute__((always_inline)) inline void tile_block_impl(
    const float* q, int64_t rows, int64_t group, const float* kt, const float* const* vals,
    const float* bias, int64_t n_rt, int64_t hd, float scale, float* m, float* l, float* acc) {
  constexpr int64_t kMaxKeys = 64;
  const int64_t n = N > 0 ? N : n_rt;
  alignas(32) float s[kMaxKeys];
  for (int64_t r = 0; r < rows; ++r) {
    const float* qr = q + r * hd;
    const float* br = bias + (r / group) * kMaxKeys;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) s[j] = br[j];
    for (int64_t i = 0; i < hd; ++i) {
      const float qi = qr[i] * scale;
      const float* kti = kt + i * n;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) s[j] += qi * kti[j];
    }
    float bmax = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : bmax)
    for (int64_t j = 0; j < n; ++j) bmax = std::max(bmax, s[j]);
    if (bmax == -std::numeric_limits<float>::infinity()) continue;  // nothing visible in this block
    const float m_new = std::max(m[r], bmax);
    const float corr =
        m[r] == -std::numeric_limits<float>::infinity() ? 0.0f : exp_neg(m[r] - m_new);
    float psum = 0;
#pragma omp simd reduction(+ : psum)
    for (int64_t j = 0; j < n; ++j) {
      s[j] = exp_neg(s[j] - m_new);  // -inf (hidden key) clamps to 2^-126 * p: zeroed next
      s[j] = br[j] == 0.0f ? s[j] : 0.0f;
      psum += s[j];
    }
    l[r] = l[r] * corr + psum;
    float* ar = acc + r * hd;
    if (hd % 8 == 0 && has_avx2()) {
      pv_avx2(s, vals, n, hd, corr, ar);
      m[r] = m_new;
      continue;
    }
#pragma omp simd
    for (int64_t i = 0; i < hd; ++i) ar[i] *= corr;
    for (int64_t j = 0; j < n; ++j) {
      const float p = s[j];
      if (p == 0.0f) continue;
      const float* v = vals[j];
#pragma omp simd
      for (int64_t i = 0; i < hd; ++i) ar[i] += p * v[i];
    }
    m[r] = m_new;
  }
}

__attribute__((target_clones("arch=x86-64-v3", "default"))) void tile_block(
    const float* q, int64_t rows, int64_t group, const float* kt, const float* const* vals,
    const float* bias, int64_t n, int64_t hd, float scale, float* m, float* l, float* acc) {
  if (n == 16) {
    tile_block_impl<16>(q, rows, group, kt, vals, bias, n, hd, scale, m, l, acc);
  } else {
    tile_block_impl<0>(q, rows, group, kt, vals, bias, n, hd, scale, m, l, acc);
  }
}

// exp for 8 lanes (same polynomial as exp_neg), for the dense prefill path.
__attribute__((target("avx2,fma"))) inline __m256 exp8(__m256 x) {
  return exp_poly8(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)));
}

__attribute__((target("avx2,fma"))) inline float hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

__attribute__((target("avx2,fma"))) inline float hsum8(__m256 v) {
  __m128 m = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_add_ps(m, _mm_movehl_ps(m, m));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// One query row against all its keys at once (the whole row of scores fits in L1, so no online
// rescaling): q [hd] pre-scaled, kt [hd][ld] keys transposed, vm [n][hd] values, bias [n8]: 0 for
// a visible key, -inf otherwise, n8 = n rounded up to 8 (kt and bias are padded). s: scratch [n8].
__attribute__((target("avx2,fma"))) void dense_row(const float* q, const float* kt, int64_t ld,
                                                   const float* vm, const float* bias, int64_t n,
                                                   int64_t hd, float* s, float* out) {
  const int64_t n8 = (n + 7) / 8 * 8;
  // Scores: eight (then four) independent FMA chains, as one chain per accumulator would wait on
  // the FMA latency (4-5 cycles) instead of issuing two per cycle.
  int64_t j = 0;
  for (; j + 64 <= n8; j += 64) {
    __m256 a[8];
    for (int k = 0; k < 8; ++k) a[k] = _mm256_loadu_ps(bias + j + 8 * k);
    for (int64_t i = 0; i < hd; ++i) {
      const __m256 qi = _mm256_broadcast_ss(q + i);
      const float* k = kt + i * ld + j;
      for (int c = 0; c < 8; ++c) a[c] = _mm256_fmadd_ps(qi, _mm256_loadu_ps(k + 8 * c), a[c]);
    }
    for (int k = 0; k < 8; ++k) _mm256_storeu_ps(s + j + 8 * k, a[k]);
  }
  for (; j + 32 <= n8; j += 32) {
    __m256 a0 = _mm256_loadu_ps(bias + j), a1 = _mm256_loadu_ps(bias + j + 8);
    __m256 a2 = _mm256_loadu_ps(bias + j + 16), a3 = _mm256_loadu_ps(bias + j + 24);
    for (int64_t i = 0; i < hd; ++i) {
      const __m256 qi = _mm256_broadcast_ss(q + i);
      const float* k = kt + i * ld + j;
      a0 = _mm256_fmadd_ps(qi, _mm256_loadu_ps(k), a0);
      a1 = _mm256_fmadd_ps(qi, _mm256_loadu_ps(k + 8), a1);
      a2 = _mm256_fmadd_ps(qi, _mm256_loadu_ps(k + 16), a2);
      a3 = _mm256_fmadd_ps(qi, _mm256_loadu_ps(k + 24), a3);
    }
    _mm256_storeu_ps(s + j, a0);
    _mm256_storeu_ps(s + j + 8, a1);
    _mm256_storeu_ps(s + j + 16, a2);
    _mm256_storeu_ps(s + j + 24, a3);
  }
  for (; j < n8; j += 8) {
    __m256 a0 = _mm256_loadu_ps(bias + j);
    for (int64_t i = 0; i < hd; ++i)
      a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(q + i), _mm256_loadu_ps(kt + i * ld + j), a0);
    _mm256_storeu_ps(s + j, a0);
  }
  __m256 mx = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (j = 0; j < n8; j += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(s + j));
  const float m = hmax8(mx);
  if (m == -std::numeric_limits<float>::infinity()) {  // no visible key: zeros, as the reference
    std::fill(out, out + hd, 0.0f);
    return;
  }
  const __m256 mv = _mm256_set1_ps(m), zero = _mm256_setzero_ps();
  __m256 sum = zero;
  for (j = 0; j < n8; j += 8) {
    const __m256 visible = _mm256_cmp_ps(_mm256_loadu_ps(bias + j), zero, _CMP_EQ_OQ);
    const __m256 p = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), mv)), visible);
    _mm256_storeu_ps(s + j, p);
    sum = _mm256_add_ps(sum, p);
  }
  const __m256 inv = _mm256_set1_ps(1.0f / hsum8(sum));
  for (int64_t i0 = 0; i0 < hd; i0 += 32) {
    const int64_t w = std::min<int64_t>(32, hd - i0);
    // Two keys per step into two accumulator sets: 8 independent chains for hd 32.
    __m256 a[4] = {zero, zero, zero, zero}, c[4] = {zero, zero, zero, zero};
    for (j = 0; j + 2 <= n; j += 2) {
      const __m256 p0 = _mm256_broadcast_ss(s + j), p1 = _mm256_broadcast_ss(s + j + 1);
      const float* v0 = vm + j * hd + i0;
      const float* v1 = v0 + hd;
      for (int k = 0; k < 4; ++k) {
        if (8 * k < w) {
          a[k] = _mm256_fmadd_ps(p0, _mm256_loadu_ps(v0 + 8 * k), a[k]);
          c[k] = _mm256_fmadd_ps(p1, _mm256_loadu_ps(v1 + 8 * k), c[k]);
        }
      }
    }
    if (j < n) {
      const __m256 p0 = _mm256_broadcast_ss(s + j);
      for (int k = 0; 8 * k < w; ++k)
        a[k] = _mm256_fmadd_ps(p0, _mm256_loadu_ps(vm + j * hd + i0 + 8 * k), a[k]);
    }
    for (int k = 0; k < 4; ++k) a[k] = _mm256_add_ps(a[k], c[k]);
    for (int k = 0; 8 * k < w; ++k) _mm256_storeu_ps(out + i0 + 8 * k, _mm256_mul_ps(a[k], inv));
  }
}

// Prefill from an empty cache (encoders, a first prompt) on AVX2 CPUs: per (sequence, KV head)
// the keys are transposed once into [hd][S] and the values gathered into [S][hd]; then every
// query row of the group computes its whole score row, softmax and P.V (dense_row). The tiled
// path re-transposed each key block for every 16-query tile and kept 16-key online-softmax
// state; on MiniLM (12 heads, hd 32, S 128) attention took ~35% of the forward that way.
void attention_dense_prefill(const AttentionArgs& a, const AttentionContext& ctx,
                             const float* cos_t, const float* sin_t) {
  const int64_t n_kv = ctx.n_kv_heads, hd = ctx.head_dim, group = a.n_heads / n_kv, half = hd / 2;
  const int64_t S = a.seq, ld = (S + 7) / 8 * 8;
  float* kp = ctx.k_pool[static_cast<size_t>(a.layer)];
  float* vp = ctx.v_pool[static_cast<size_t>(a.layer)];
  const float scale = static_cast<float>(a.scale);
#pragma omp parallel
  {
    // Per-thread scratch kept across calls: no allocation once the largest shape has been seen.
    thread_local std::vector<float> kt, vm, base, rowbias, s, qrow;
    kt.resize(static_cast<size_t>(hd * ld));
    vm.resize(static_cast<size_t>(S * hd));
    base.resize(static_cast<size_t>(ld));
    rowbias.resize(static_cast<size_t>(ld));
    s.resize(static_cast<size_t>(ld));
    qrow.resize(static_cast<size_t>(hd));
    // Work item = (sequence, KV head, chunk of kDenseChunk queries), so that a batch-1 prefill with
    // few KV heads still spreads over the threads; each item gathers only the keys its chunk sees.
    const int64_t n_chunks = (S + kDenseChunk - 1) / kDenseChunk;
#pragma omp for collapse(3) schedule(dynamic)
    for (int64_t b = 0; b < a.batch; ++b) {
      for (int64_t kvh = 0; kvh < n_kv; ++kvh) {
        for (int64_t chunk = 0; chunk < n_chunks; ++chunk) {
          const SequenceView& sv = ctx.seqs[static_cast<size_t>(b)];
          const int64_t t0 = chunk * kDenseChunk, t1 = std::min(S, t0 + kDenseChunk);
          const int64_t n_keys = a.causal ? t1 : S;
          std::fill(kt.begin(), kt.end(), 0.0f);  // padding columns stay 0
          for (int64_t j = 0; j < n_keys; ++j) {
            const float* kj = slot_ptr(kp, sv, j, ctx) + kvh * hd;  // rotated already
            for (int64_t i = 0; i < hd; ++i) kt[static_cast<size_t>(i * ld + j)] = kj[i];
            std::memcpy(&vm[static_cast<size_t>(j * hd)], slot_ptr(vp, sv, j, ctx) + kvh * hd,
                        static_cast<size_t>(hd) * sizeof(float));
            base[static_cast<size_t>(j)] =
                sv.key_valid[j] != 0 ? 0.0f : -std::numeric_limits<float>::infinity();
          }
          for (int64_t j = n_keys; j < ld; ++j)
            base[static_cast<size_t>(j)] = -std::numeric_limits<float>::infinity();
          for (int64_t t = t0; t < t1; ++t) {
            const int64_t tok = b * S + t;
            const int64_t n = a.causal ? t + 1 : S;  // keys this query may see (before padding)
            const float* brow = base.data();
            if (a.causal) {
              const int64_t n8 = (n + 7) / 8 * 8;
              std::copy(base.begin(), base.begin() + n8, rowbias.begin());
              for (int64_t j = n; j < n8; ++j)
                rowbias[static_cast<size_t>(j)] = -std::numeric_limits<float>::infinity();
              brow = rowbias.data();
            }
            for (int64_t g = 0; g < group; ++g) {
              const int64_t h = kvh * group + g;
              const float* src = a.q + tok * a.q_stride + h * hd;
              if (cos_t != nullptr) {
                rotate(src, cos_t + tok * half, sin_t + tok * half, hd, qrow.data());
              } else {
                std::copy(src, src + hd, qrow.begin());
              }
              for (int64_t i = 0; i < hd; ++i) qrow[static_cast<size_t>(i)] *= scale;
              dense_row(qrow.data(), kt.data(), ld, vm.data(), brow, n, hd, s.data(),
                        a.out + (tok * a.n_heads + h) * hd);
            }
          }
        }
      }
    }
  }
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
        rotate(ks, &cos_t[static_cast<size_t>(t * half)], &sin_t[static_cast<size_t>(t * half)], hd,
               kd + h * hd);
      } else {
        std::memcpy(kd + h * hd, ks, static_cast<size_t>(hd) * sizeof(float));
      }
      std::memcpy(vd + h * hd, a.v + t * a.kv_stride + h * hd,
                  static_cast<size_t>(hd) * sizeof(float));
    }
  }

  // 2. Attend. Prefill from an empty cache with the whole row of scores in L1: the dense path.
  bool fresh = a.window == 0 && a.seq <= kDenseMaxKeys && hd % 8 == 0 && has_avx2();
  for (const auto& sv : ctx.seqs) fresh = fresh && sv.past_len == 0;
  if (fresh) {
    attention_dense_prefill(a, ctx, rope ? cos_t.data() : nullptr, rope ? sin_t.data() : nullptr);
    return;
  }
  // Otherwise one (sequence, KV head, query tile) per work item.
  const int64_t n_tiles = (a.seq + kTileQ - 1) / kTileQ;
  const float scale = static_cast<float>(a.scale);
#pragma omp parallel
  {
    const int64_t rows_max = kTileQ * group;
    std::vector<float> qbuf(static_cast<size_t>(rows_max * hd)),
        acc(static_cast<size_t>(rows_max * hd));
    std::vector<float> m(static_cast<size_t>(rows_max)), l(static_cast<size_t>(rows_max));
    std::vector<const float*> vals(static_cast<size_t>(bs));
    std::vector<float> vis(
        static_cast<size_t>(kTileQ * 64));  // [token in tile][key in block]: 0 or -inf
    std::vector<float> kt(static_cast<size_t>(hd * bs));  // block keys transposed [hd][n]
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
                rotate(src, &cos_t[static_cast<size_t>(tok * half)],
                       &sin_t[static_cast<size_t>(tok * half)], hd, dst);
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
            const int64_t n = j1 - j0;
            for (int64_t j = j0; j < j1; ++j) {
              const float* kj = slot_ptr(kp, sv, j, ctx) + kvh * hd;
              for (int64_t i = 0; i < hd; ++i) kt[static_cast<size_t>(i * n + (j - j0))] = kj[i];
              vals[static_cast<size_t>(j - j0)] = slot_ptr(vp, sv, j, ctx) + kvh * hd;
            }
            for (int64_t t = t0; t < t1; ++t) {
              const int64_t qpos = sv.past_len + t;
              for (int64_t j = j0; j < j1; ++j) {
                bool ok = sv.key_valid[j] != 0;
                if (a.causal && j > qpos) ok = false;
                if (a.window > 0 && qpos - j >= a.window) ok = false;
                vis[static_cast<size_t>((t - t0) * 64 + (j - j0))] =
                    ok ? 0.0f : -std::numeric_limits<float>::infinity();
              }
            }
            tile_block(qbuf.data(), rows, group, kt.data(), vals.data(), vis.data(), n, hd, scale,
                       m.data(), l.data(), acc.data());
          }
          for (int64_t t = t0; t < t1; ++t) {
            for (int64_t g = 0; g < group; ++g) {
              const int64_t r = (t - t0) * group + g;
              float* o = a.out + ((b * a.seq + t) * a.n_heads + kvh * group + g) * hd;
              const float li = l[static_cast<size_t>(r)];
              const float inv =
                  li > 0 ? 1.0f / li : 0.0f;  // no visible key: zeros, as the reference
              for (int64_t i = 0; i < hd; ++i) o[i] = acc[static_cast<size_t>(r * hd + i)] * inv;
            }
          }
        }
      }
    }
  }
}

}  // namespace kpt::cpu::fast
