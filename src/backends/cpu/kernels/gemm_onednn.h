// One linear layer as a oneDNN matmul: weights reordered once at load into the layout oneDNN
// prefers for this CPU, bias and epilogue (activation, residual add) fused as post-ops.
// Primitives are created per row count on first use and kept (prefill lengths vary, a decode
// step always has the same rows), so a steady decode loop creates nothing.
#pragma once

#include <cstdint>
#include <memory>

namespace kpt::cpu::fast {

class OnednnLinear {
 public:
  // w [n_out, n_in] row-major (nn.Linear layout), bias [n_out] or null. act: graph::OpKind code of
  // an activation or -1. The weight memory must outlive this object only until the constructor
  // returns when it is repacked; otherwise (plain layout preferred) it is used in place.
  // bf16: weights converted to bf16 once, activations rounded to bf16 per call (round to nearest
  // even), fp32 accumulation and output; for CPUs with AVX512_BF16 / AMX. Throws kUnsupported when
  // this oneDNN has no bf16 matmul for the CPU.
  OnednnLinear(const float* w, int64_t n_out, int64_t n_in, const float* bias, int64_t act, bool residual,
               bool bf16 = false);
  ~OnednnLinear();
  OnednnLinear(const OnednnLinear&) = delete;
  OnednnLinear& operator=(const OnednnLinear&) = delete;

  // out [rows, n_out] = act(x [rows, n_in] . w^T + bias) + residual [rows, n_out].
  void run(const float* x, int64_t rows, const float* residual, float* out);
  bool repacked() const;  // weights were copied into a blocked layout at load
  bool bf16() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kpt::cpu::fast
