// Elementwise kernels, embedding, row gather and the bf16 conversion feeding GEMMs.
// Grid-stride loops over int64 indices: sizes past 2^31 elements stay correct.
#include <cuda_bf16.h>

#include "backends/cuda/check.h"
#include "backends/cuda/kernels/kernels.h"

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

template <Unary kOp>
__global__ void unary_kernel(const float* __restrict__ x, int64_t n, float* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    out[i] = apply<kOp>(x[i]);
  }
}

// act(x) * y: the gated MLP (SwiGLU and friends) in one pass instead of two launches.
template <Unary kOp>
__global__ void unary_mul_kernel(const float* __restrict__ x, const float* __restrict__ y, int64_t n,
                                 float* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    out[i] = apply<kOp>(x[i]) * y[i];
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

void unary(Unary op, const float* x, int64_t n, float* out, cudaStream_t stream) {
  if (n == 0) return;
  const unsigned g = grid_for(n);
  switch (op) {
    case Unary::kGeluErf: unary_kernel<Unary::kGeluErf><<<g, kThreads, 0, stream>>>(x, n, out); break;
    case Unary::kGeluTanh: unary_kernel<Unary::kGeluTanh><<<g, kThreads, 0, stream>>>(x, n, out); break;
    case Unary::kSilu: unary_kernel<Unary::kSilu><<<g, kThreads, 0, stream>>>(x, n, out); break;
    case Unary::kRelu: unary_kernel<Unary::kRelu><<<g, kThreads, 0, stream>>>(x, n, out); break;
  }
  KPT_CUDA_CHECK_LAUNCH();
}

void unary_mul(Unary op, const float* x, const float* y, int64_t n, float* out, cudaStream_t stream) {
  if (n == 0) return;
  const unsigned g = grid_for(n);
  switch (op) {
    case Unary::kGeluErf: unary_mul_kernel<Unary::kGeluErf><<<g, kThreads, 0, stream>>>(x, y, n, out); break;
    case Unary::kGeluTanh: unary_mul_kernel<Unary::kGeluTanh><<<g, kThreads, 0, stream>>>(x, y, n, out); break;
    case Unary::kSilu: unary_mul_kernel<Unary::kSilu><<<g, kThreads, 0, stream>>>(x, y, n, out); break;
    case Unary::kRelu: unary_mul_kernel<Unary::kRelu><<<g, kThreads, 0, stream>>>(x, y, n, out); break;
  }
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
