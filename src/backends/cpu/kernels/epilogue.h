// The scalar GEMM epilogue of the decode kernels (bias, then activation, then residual), shared by
// the int8 and fp32 few-row GEMVs so both apply the same functions.
#pragma once

#include <cmath>
#include <cstdint>

#include "graph/ir.h"

namespace kpt::cpu::fast {

inline float act_one(int64_t act, float v) {
  switch (static_cast<graph::OpKind>(act)) {
    case graph::OpKind::kGeluErf: return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752440f));
    case graph::OpKind::kGeluTanh: return 0.5f * v * (1.0f + std::tanh(0.79788456080286535588f * (v + 0.044715f * v * v * v)));
    case graph::OpKind::kSilu: return v / (1.0f + std::exp(-v));
    case graph::OpKind::kRelu: return v > 0.0f ? v : 0.0f;
    default: return v;
  }
}

// out[r, o] = act(dots[r] + bias[o]) + residual[r, o] for the rows of one output feature o.
inline void epilogue_column(const float* dots, int64_t rows, int64_t o, int64_t n_out, const float* bias,
                            int64_t act, const float* residual, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    float v = dots[r] + (bias != nullptr ? bias[o] : 0.0f);
    if (act >= 0) v = act_one(act, v);
    if (residual != nullptr) v += residual[r * n_out + o];
    out[r * n_out + o] = v;
  }
}

}  // namespace kpt::cpu::fast
