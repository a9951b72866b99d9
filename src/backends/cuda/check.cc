#include "backends/cuda/check.h"

#include <fmt/format.h>

#include "kpt/status.h"

namespace kpt::cuda {

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  const ErrorCode code = err == cudaErrorMemoryAllocation ? ErrorCode::kOutOfMemory : ErrorCode::kInternal;
  throw Error(code, fmt::format("CUDA call {} failed at {}:{}: {} ({})", call, file, line, cudaGetErrorString(err),
                                cudaGetErrorName(err)));
}

void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  const ErrorCode code = status == CUBLAS_STATUS_ALLOC_FAILED ? ErrorCode::kOutOfMemory : ErrorCode::kInternal;
  throw Error(code, fmt::format("cuBLASLt call {} failed at {}:{}: {} ({})", call, file, line,
                                cublasLtGetStatusString(status), cublasLtGetStatusName(status)));
}

}  // namespace kpt::cuda
