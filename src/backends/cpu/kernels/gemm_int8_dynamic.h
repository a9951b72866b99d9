// Dynamic int8 linear for compute-bound GEMMs (encoders at the aggressive level): activations are
// quantized per token at run time (asymmetric u8, one scale and zero point per row), weights per
// output channel ahead of time (symmetric int8 in [-kInt8WeightMax, kInt8WeightMax]); oneDNN's
// u8s8s32 matmul does the integer dot products, then one pass per row undoes the scales, adds
// the bias, applies the activation and adds the residual.
//
// Why weights stop at 63: without AVX-512 VNNI, oneDNN's AVX2 int8 kernel multiplies with
// vpmaddubsw, which adds two u8*s8 products into a *saturating* int16. 255 * 127 * 2 overflows
// (measured: every output of a 64x384x256 test was clipped), 255 * 63 * 2 = 32130 does not.
// Per-token activations keep a row's result independent of the other rows of the batch, so
// batched == single still holds at this level.
#pragma once

#include <cstdint>
#include <memory>

namespace kpt::cpu::fast {

constexpr int kInt8WeightMax = 63;

// Per-row asymmetric quantization of x [rows, n]: x[r, i] ~= scale[r] * (q[r, i] - zp[r]),
// q in [0, 255]; the range always contains 0 so zeros (padding) stay exact.
void quantize_rows_u8(const float* x, int64_t rows, int64_t n, uint8_t* q, float* scale,
                      int32_t* zp);

class OnednnLinearInt8 {
 public:
  // wq [n_out, n_in] int8 in [-kInt8WeightMax, kInt8WeightMax] with w[o, i] ~= w_scale[o] * wq[o,
  // i]; bias [n_out] or null; act: graph::OpKind code of an activation or -1. wq is repacked at
  // construction and not used afterwards; w_scale must outlive this object (the bias is copied).
  OnednnLinearInt8(const int8_t* wq, const float* w_scale, int64_t n_out, int64_t n_in,
                   const float* bias, int64_t act, bool residual);
  ~OnednnLinearInt8();
  OnednnLinearInt8(const OnednnLinearInt8&) = delete;
  OnednnLinearInt8& operator=(const OnednnLinearInt8&) = delete;

  // out [rows, n_out] = act(x [rows, n_in] . w^T + bias) + residual [rows, n_out]. Scratch for the
  // quantized rows is kept between calls (no allocation in a steady loop).
  void run(const float* x, int64_t rows, const float* residual, float* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reference twin: the same quantization of x, int32 dot products in plain loops, reference
// activations (std::erf, std::tanh, std::exp).
void linear_int8_dynamic_reference(const float* x, int64_t rows, int64_t n_in, const int8_t* wq,
                                   const float* w_scale, const float* bias, int64_t act,
                                   const float* residual, int64_t n_out, float* out);

}  // namespace kpt::cpu::fast
