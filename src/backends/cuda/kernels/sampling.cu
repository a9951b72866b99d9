// Token choice on the device: greedy decoding and top-k sampling read back one id per row instead
// of the row's logits (a 32,000-float row is 128 KB per token, then a host-side scan or sort).
#include <cmath>

#include "backends/cuda/check.h"
#include "backends/cuda/kernels/kernels.h"
#include "kpt/status.h"

namespace kpt::cuda {

namespace {

constexpr int kArgmaxThreads = 512;

// (value, index) with the first maximum winning ties, as torch.argmax. NaN never wins here (the
// host twin can return a NaN in first place; NaN logits are a bug upstream either way).
struct Best {
  float v;
  int64_t i;
};

__device__ __forceinline__ Best better(Best a, Best b) {
  if (b.v > a.v || (b.v == a.v && b.i < a.i)) return b;
  return a;
}

// One block per row; each thread scans a strided slice, then a warp-shuffle and shared-memory
// reduction. Rows start at arbitrary offsets (vocab sizes like 50,257), so loads are scalar.
__global__ void __launch_bounds__(kArgmaxThreads) argmax_kernel(const float* __restrict__ x, int64_t n,
                                                                int64_t* __restrict__ out) {
  const float* row = x + int64_t{blockIdx.x} * n;
  Best best{-INFINITY, n};  // index n: none yet; a row of -inf ties down to index 0
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) best = better(best, Best{row[i], i});
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    Best other{__shfl_xor_sync(0xffffffffu, best.v, o), __shfl_xor_sync(0xffffffffu, best.i, o)};
    best = better(best, other);
  }
  __shared__ Best warp_best[kArgmaxThreads / 32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_best[warp] = best;
  __syncthreads();
  if (threadIdx.x == 0) {
    Best b = warp_best[0];
    for (int w = 1; w < kArgmaxThreads / 32; ++w) b = better(b, warp_best[w]);
    // Only NaN in the row: std::max_element returns the first element.
    out[blockIdx.x] = b.i < n ? b.i : 0;
  }
}

constexpr int kSampleThreads = 256;

// (logit, id) as one 64-bit key ordered like the host's sort: larger logit first, then lower id.
// The float maps to an unsigned order (negatives flipped); -0 counts as +0 (the host's == does).
__device__ __forceinline__ uint64_t sample_key(const float* row, int64_t i) {
  float f = row[i];
  if (f == 0.0f) f = 0.0f;
  const uint32_t u = __float_as_uint(f);
  const uint32_t ord = (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);
  return (static_cast<uint64_t>(ord) << 32) | (0xffffffffu - static_cast<uint32_t>(i));
}

__device__ __forceinline__ int64_t key_id(uint64_t key) { return 0xffffffffu - static_cast<uint32_t>(key); }

// One block per row. Keys are distinct (the id is part of them), so the k-th largest is one key:
// eight passes over the row's keys, 8 bits each, narrow the prefix with a 256-bin histogram.
__global__ void __launch_bounds__(kSampleThreads)
    sample_kernel(const float* __restrict__ x, int64_t n, double temperature, int k, double top_p,
                  const double* __restrict__ r, int64_t* __restrict__ out) {
  __shared__ unsigned hist[256];
  __shared__ uint64_t keys[kMaxSampleTopK];
  __shared__ double probs[kMaxSampleTopK];
  __shared__ uint64_t prefix_s;
  __shared__ int remaining_s, count_s;
  const float* row = x + int64_t{blockIdx.x} * n;
  const int tid = threadIdx.x;
  uint64_t prefix = 0;
  int remaining = k;  // rank of the wanted key among those that share `prefix`
  for (int pass = 0; pass < 8; ++pass) {
    const int shift = 56 - 8 * pass;
    const uint64_t decided = pass == 0 ? 0 : ~uint64_t{0} << (shift + 8);
    for (int i = tid; i < 256; i += blockDim.x) hist[i] = 0;
    __syncthreads();
    for (int64_t i = tid; i < n; i += blockDim.x) {
      const uint64_t key = sample_key(row, i);
      if ((key & decided) == prefix) atomicAdd(&hist[(key >> shift) & 0xff], 1u);
    }
    __syncthreads();
    if (tid == 0) {
      int above = 0, d = 255;
      for (; d > 0; --d) {
        if (above + static_cast<int>(hist[d]) >= remaining) break;
        above += static_cast<int>(hist[d]);
      }
      prefix_s = prefix | (static_cast<uint64_t>(d) << shift);
      remaining_s = remaining - above;
      count_s = 0;
    }
    __syncthreads();
    prefix = prefix_s;
    remaining = remaining_s;
  }
  // prefix is the k-th largest key: the kept set is every key >= it.
  for (int64_t i = tid; i < n; i += blockDim.x) {
    const uint64_t key = sample_key(row, i);
    if (key >= prefix) keys[atomicAdd(&count_s, 1)] = key;
  }
  int padded = 1;
  while (padded < k) padded <<= 1;
  for (int i = k + tid; i < padded; i += blockDim.x) keys[i] = 0;  // below every real key
  __syncthreads();
  // Bitonic sort, descending.
  for (int size = 2; size <= padded; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int i = tid; i < padded; i += blockDim.x) {
        const int j = i ^ stride;
        if (j > i) {
          const uint64_t a = keys[i], b = keys[j];
          const bool descending = (i & size) == 0;
          if (descending ? a < b : a > b) {
            keys[i] = b;
            keys[j] = a;
          }
        }
      }
      __syncthreads();
    }
  }
  const double max_logit = row[key_id(keys[0])];
  for (int i = tid; i < k; i += blockDim.x) probs[i] = exp((static_cast<double>(row[key_id(keys[i])]) - max_logit) / temperature);
  __syncthreads();
  if (tid != 0) return;
  // The host's sums, in its order (k <= 1,024 sequential adds).
  double total = 0;
  for (int i = 0; i < k; ++i) total += probs[i];
  int keep = k;
  if (top_p < 1.0) {
    double cum = 0;
    for (int i = 0; i < k; ++i) {
      cum += probs[i] / total;
      if (cum >= top_p) {
        keep = i + 1;
        break;
      }
    }
    total = 0;
    for (int i = 0; i < keep; ++i) total += probs[i];
  }
  double left = r[blockIdx.x] * total;
  for (int i = 0; i < keep; ++i) {
    left -= probs[i];
    if (left < 0) {
      out[blockIdx.x] = key_id(keys[i]);
      return;
    }
  }
  out[blockIdx.x] = key_id(keys[keep - 1]);
}

}  // namespace

void sample_rows(const float* x, int64_t rows, int64_t n, double temperature, int64_t k, double top_p, const double* r,
                 int64_t* out, cudaStream_t stream) {
  KPT_CHECK(k >= 1 && k <= kMaxSampleTopK && k <= n, "sample_rows: k must be in 1..min(n, 1024)");
  KPT_CHECK(n <= int64_t{0xffffffff}, "sample_rows: vocabulary too large");
  if (rows == 0) return;
  sample_kernel<<<static_cast<unsigned>(rows), kSampleThreads, 0, stream>>>(x, n, temperature, static_cast<int>(k),
                                                                            top_p, r, out);
  KPT_CUDA_CHECK_LAUNCH();
}

void argmax_rows(const float* x, int64_t rows, int64_t n, int64_t* out, cudaStream_t stream) {
  if (rows == 0) return;
  argmax_kernel<<<static_cast<unsigned>(rows), kArgmaxThreads, 0, stream>>>(x, n, out);
  KPT_CUDA_CHECK_LAUNCH();
}

}  // namespace kpt::cuda
