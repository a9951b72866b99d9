// GEMM through cuBLASLt: out [M, N] = x [M, K] . w [N, K]^T (+ bias [N]), row-major, as nn.Linear.
// fp32 operands (no TF32: the reference level must stay fp32) or bf16 operands with fp32
// accumulation and fp32 output; bias is fused as the epilogue. The algorithm, descriptors and
// layouts are chosen once per (M, N, K, dtype, bias) and cached.
#pragma once

#include <cstdint>
#include <map>
#include <tuple>

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include "backends/cuda/device_memory.h"

namespace kpt::cuda {

enum class GemmType : int { kF32, kBF16 };

class CublasLtGemm {
 public:
  CublasLtGemm();
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm&) = delete;
  CublasLtGemm& operator=(const CublasLtGemm&) = delete;

  // x: [M, K] (fp32 or bf16 per type), w: [N, K] same type, bias: [N] fp32 or null, out: [M, N] fp32.
  void linear(GemmType type, const void* x, const void* w, const float* bias, float* out, int64_t m, int64_t n,
              int64_t k, cudaStream_t stream);

  size_t n_cached_plans() const { return plans_.size(); }
  int64_t n_simt_fallbacks() const { return n_simt_fallbacks_; }  // shapes cuBLASLt had no algorithm for

 private:
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    bool simt = false;  // no cuBLASLt algorithm: gemm_simt runs this shape
  };
  using Key = std::tuple<int64_t, int64_t, int64_t, int, bool>;
  Plan& plan(GemmType type, int64_t m, int64_t n, int64_t k, bool has_bias);

  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer workspace_;
  std::map<Key, Plan> plans_;
  int64_t n_simt_fallbacks_ = 0;
};

}  // namespace kpt::cuda
