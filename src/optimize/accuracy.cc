#include "optimize/accuracy.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace kpt::optimize {

std::string Agreement::summary() const {
  if (causal_lm) {
    return fmt::format("top-1 agreement {:.2f}% and mean KL {:.2e} over {} positions", 100 * top1_agreement, mean_kl,
                       n_positions);
  }
  return fmt::format("cosine min {:.6f} / mean {:.6f} over {} positions", min_cosine, mean_cosine, n_positions);
}

Agreement compare_outputs(const float* ref, const float* cand, int64_t n_positions, int64_t dim, bool causal_lm,
                          const std::vector<uint8_t>& valid) {
  Agreement a;
  a.causal_lm = causal_lm;
  int64_t agree = 0;
  double kl_sum = 0, cos_sum = 0;
  for (int64_t p = 0; p < n_positions; ++p) {
    if (!valid.empty() && !valid[static_cast<size_t>(p)]) continue;
    const float* r = ref + p * dim;
    const float* c = cand + p * dim;
    ++a.n_positions;
    if (causal_lm) {
      agree += std::max_element(r, r + dim) - r == std::max_element(c, c + dim) - c;
      // KL(P_ref || P_cand) with log-softmax in double.
      const double mr = *std::max_element(r, r + dim), mc = *std::max_element(c, c + dim);
      double zr = 0, zc = 0;
      for (int64_t i = 0; i < dim; ++i) {
        zr += std::exp(r[i] - mr);
        zc += std::exp(c[i] - mc);
      }
      const double lzr = std::log(zr) + mr, lzc = std::log(zc) + mc;
      double kl = 0;
      for (int64_t i = 0; i < dim; ++i) {
        const double lp = r[i] - lzr, lq = c[i] - lzc;
        kl += std::exp(lp) * (lp - lq);
      }
      kl_sum += std::max(kl, 0.0);
    } else {
      double dot = 0, nr = 0, nc = 0;
      for (int64_t i = 0; i < dim; ++i) {
        dot += static_cast<double>(r[i]) * c[i];
        nr += static_cast<double>(r[i]) * r[i];
        nc += static_cast<double>(c[i]) * c[i];
      }
      const double cosv = (nr > 0 && nc > 0) ? dot / std::sqrt(nr * nc) : (nr == nc ? 1.0 : 0.0);
      a.min_cosine = std::min(a.min_cosine, cosv);
      cos_sum += cosv;
    }
  }
  if (a.n_positions > 0) {
    const double n = static_cast<double>(a.n_positions);
    if (causal_lm) {
      a.top1_agreement = static_cast<double>(agree) / n;
      a.mean_kl = kl_sum / n;
    } else {
      a.mean_cosine = cos_sum / n;
    }
  }
  return a;
}

bool within_budget(const Agreement& a, const Budget& b) {
  if (a.causal_lm) return a.top1_agreement >= b.min_top1_agreement && a.mean_kl <= b.max_mean_kl;
  return a.min_cosine >= b.min_cosine;
}

}  // namespace kpt::optimize
