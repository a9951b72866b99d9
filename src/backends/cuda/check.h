// Every CUDA runtime and cuBLASLt call goes through one of these checks. They throw kpt::Error
// naming the call, file:line and the library's own message. No fmt here: .cu files include it.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

namespace kpt::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line);

}  // namespace kpt::cuda

#define KPT_CUDA_CHECK(call)                                                              \
  do {                                                                                    \
    const cudaError_t kpt_cuda_err_ = (call);                                             \
    if (kpt_cuda_err_ != cudaSuccess) ::kpt::cuda::throw_cuda_error(kpt_cuda_err_, #call, __FILE__, __LINE__); \
  } while (0)

#define KPT_CUBLAS_CHECK(call)                                                                   \
  do {                                                                                           \
    const cublasStatus_t kpt_cublas_st_ = (call);                                                \
    if (kpt_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                                 \
      ::kpt::cuda::throw_cublas_error(kpt_cublas_st_, #call, __FILE__, __LINE__);                \
  } while (0)

// After a kernel launch: launch-configuration errors surface here, not at the next sync.
#define KPT_CUDA_CHECK_LAUNCH() KPT_CUDA_CHECK(cudaGetLastError())
