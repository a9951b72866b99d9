// 16-byte vector stores shared by the kernels that write fp32 results and, optionally, their bf16
// copies for the next GEMM (elementwise.cu, norm.cu).
#pragma once

#include <cstdint>

#include <cuda_bf16.h>

namespace kpt::cuda {

inline bool aligned_to(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// Element group i4 (elements 4 * i4 .. 4 * i4 + 3) of out (16-byte aligned) and/or out16 (8-byte
// aligned, round to nearest even); either may be null.
__device__ __forceinline__ void store4(float* out, __nv_bfloat16* out16, int64_t i4, float4 v) {
  if (out != nullptr) reinterpret_cast<float4*>(out)[i4] = v;
  if (out16 != nullptr) {
    __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
    uint2 packed;
    packed.x = *reinterpret_cast<uint32_t*>(&lo);
    packed.y = *reinterpret_cast<uint32_t*>(&hi);
    reinterpret_cast<uint2*>(out16)[i4] = packed;
  }
}

}  // namespace kpt::cuda
