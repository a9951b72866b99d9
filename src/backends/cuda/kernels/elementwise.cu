// Elementwise kernels, embedding, row gather and the bf16 conversion feeding GEMMs.
// Grid-stride loops over int64 indices: sizes past 2^31 elements stay correct.
#include <cuda_bf16.h>

#include "backends/cuda/check.h"
#include "backends/cuda/kernels/kernels.h"
#include "backends/cuda/kernels/vec4_store.cuh"

namespace kpt::cuda {

namespace {

constexpr int kThreads = 256;

// Enough blocks to fill the GPU several times over; the loop covers the rest.
unsigned grid_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);
}

template <Unary kOp>
__device__ __forceinline__ float apply(float x) {
  if constexpr (kOp == Unary::kGeluErf) {
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));
  } else if constexpr (kOp == Unary::kGeluTanh) {
    return 0.5f * x * (1.0f + tanhf(0.79788456080286535588f * (x + 0.044715f * x * x * x)));
  } else if constexpr (kOp == Unary::kSilu) {
    return x / (1.0f + expf(-x));
  } else {
    return x > 0.0f ? x : 0.0f;
  }
}

// act(x), or act(x) * y (kMul: the gated MLP, SwiGLU and friends, in one pass instead of two
// launches), written as fp32 and/or bf16 (out16: the next GEMM's A operand, its cast kernel
// gone). kVec: 16-byte loads (n4 = n / 4 float4, the pointers aligned), the n % 4 tail scalar.
template <Unary kOp, bool kMul, bool kVec>
__global__ void act_kernel(const float* __restrict__ x, const float* __restrict__ y, int64_t n,
                           float* __restrict__ out, __nv_bfloat16* __restrict__ out16) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  const int64_t first = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  int64_t scalar_from = 0;
  if constexpr (kVec) {
    const int64_t n4 = n / 4;
    for (int64_t i4 = first; i4 < n4; i4 += stride) {
      const float4 xv = reinterpret_cast<const float4*>(x)[i4];
      float4 r = make_float4(apply<kOp>(xv.x), apply<kOp>(xv.y), apply<kOp>(xv.z), apply<kOp>(xv.w));
      if constexpr (kMul) {
        const float4 yv = reinterpret_cast<const float4*>(y)[i4];
        r = make_float4(r.x * yv.x, r.y * yv.y, r.z * yv.z, r.w * yv.w);
      }
      store4(out, out16, i4, r);
    }
    scalar_from = n4 * 4;
  }
  for (int64_t i = scalar_from + first; i < n; i += stride) {
    float r = apply<kOp>(x[i]);
    if constexpr (kMul) r *= y[i];
    if (out != nullptr) out[i] = r;
    if (out16 != nullptr) out16[i] = __float2bfloat16_rn(r);
  }
}

template <Unary kOp, bool kMul>
void launch_act(const float* x, const float* y, int64_t n, float* out, uint16_t* out16, cudaStream_t stream) {
  auto* o16 = reinterpret_cast<__nv_bfloat16*>(out16);
  const bool vec = aligned_to(x, 16) && aligned_to(y, 16) && aligned_to(out, 16) && aligned_to(out16, 8);
  if (vec) {
    act_kernel<kOp, kMul, true><<<grid_for((n + 3) / 4), kThreads, 0, stream>>>(x, y, n, out, o16);
  } else {
    act_kernel<kOp, kMul, false><<<grid_for(n), kThreads, 0, stream>>>(x, y, n, out, o16);
  }
}

template <bool kMul>
void dispatch_act(Unary op, const float* x, const float* y, int64_t n, float* out, uint16_t* out16, cudaStream_t stream) {
  switch (op) {
    case Unary::kGeluErf: launch_act<Unary::kGeluErf, kMul>(x, y, n, out, out16, stream); break;
    case Unary::kGeluTanh: launch_act<Unary::kGeluTanh, kMul>(x, y, n, out, out16, stream); break;
    case Unary::kSilu: launch_act<Unary::kSilu, kMul>(x, y, n, out, out16, stream); break;
    case Unary::kRelu: launch_act<Unary::kRelu, kMul>(x, y, n, out, out16, stream); break;
  }
}

template <Binary kOp>
__global__ void binary_kernel(const float* __restrict__ a, const float* __restrict__ b, int64_t n,
                              float* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    out[i] = kOp == Binary::kAdd ? a[i] + b[i] : a[i] * b[i];
  }
}

// One block per output row.
__global__ void embedding_kernel(const float* __restrict__ table, int64_t dim, const int64_t* __restrict__ ids,
                                 float* __restrict__ out) {
  const float* src = table + ids[blockIdx.x] * dim;
  float* dst = out + int64_t{blockIdx.x} * dim;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = src[i];
}

__global__ void gather_rows_kernel(const float* __restrict__ x, const int64_t* __restrict__ rows, int64_t seq,
                                   int64_t n_rows, int64_t dim, float* __restrict__ out) {
  const int64_t br = blockIdx.x;  // b * n_rows + r
  const int64_t b = br / n_rows;
  const float* src = x + (b * seq + rows[br]) * dim;
  float* dst = out + br * dim;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = src[i];
}

__global__ void f32_to_bf16_kernel(const float* __restrict__ x, int64_t n, __nv_bfloat16* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    out[i] = __float2bfloat16_rn(x[i]);
  }
}

// Busy-waits `ns` nanoseconds of the GPU's global timer (profiling only).
__global__ void spin_kernel(int64_t ns) {
  uint64_t t0 = 0, t = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  } while (static_cast<int64_t>(t - t0) < ns);
}

}  // namespace

void gpu_spin(int64_t ns, cudaStream_t stream) {
  spin_kernel<<<1, 1, 0, stream>>>(ns);
  KPT_CUDA_CHECK_LAUNCH();
}

void unary(Unary op, const float* x, int64_t n, float* out, cudaStream_t stream, uint16_t* out16) {
  if (n == 0) return;
  dispatch_act<false>(op, x, nullptr, n, out, out16, stream);
  KPT_CUDA_CHECK_LAUNCH();
}

void unary_mul(Unary op, const float* x, const float* y, int64_t n, float* out, cudaStream_t stream, uint16_t* out16) {
  if (n == 0) return;
  dispatch_act<true>(op, x, y, n, out, out16, stream);
  KPT_CUDA_CHECK_LAUNCH();
}

void binary(Binary op, const float* a, const float* b, int64_t n, float* out, cudaStream_t stream) {
  if (n == 0) return;
  const unsigned g = grid_for(n);
  if (op == Binary::kAdd) {
    binary_kernel<Binary::kAdd><<<g, kThreads, 0, stream>>>(a, b, n, out);
  } else {
    binary_kernel<Binary::kMul><<<g, kThreads, 0, stream>>>(a, b, n, out);
  }
  KPT_CUDA_CHECK_LAUNCH();
}

void embedding(const float* table, int64_t dim, const int64_t* ids, int64_t n, float* out, cudaStream_t stream) {
  if (n == 0) return;
  embedding_kernel<<<static_cast<unsigned>(n), 256, 0, stream>>>(table, dim, ids, out);
  KPT_CUDA_CHECK_LAUNCH();
}

void gather_rows(const float* x, const int64_t* rows, int64_t batch, int64_t seq, int64_t n_rows, int64_t dim,
                 float* out, cudaStream_t stream) {
  if (batch * n_rows == 0) return;
  gather_rows_kernel<<<static_cast<unsigned>(batch * n_rows), 256, 0, stream>>>(x, rows, seq, n_rows, dim, out);
  KPT_CUDA_CHECK_LAUNCH();
}

void f32_to_bf16(const float* x, int64_t n, uint16_t* out, cudaStream_t stream) {
  if (n == 0) return;
  f32_to_bf16_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, n, reinterpret_cast<__nv_bfloat16*>(out));
  KPT_CUDA_CHECK_LAUNCH();
}

}  // namespace kpt::cuda
