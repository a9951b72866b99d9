// Helpers of the GPU tests: skip without a GPU, device round trips, seeded random data, diffs.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "backends/cuda/backend.h"
#include "backends/cuda/check.h"
#include "backends/cuda/device_memory.h"

namespace kpt::test {

#define KPT_REQUIRE_GPU()                                                                     \
  do {                                                                                        \
    if (::kpt::cuda::device_count() == 0) GTEST_SKIP() << "no GPU: " << ::kpt::cuda::unavailable_reason(); \
  } while (0)

template <typename T>
cuda::DeviceBuffer to_device(const std::vector<T>& host) {
  cuda::DeviceBuffer buf(host.size() * sizeof(T));
  KPT_CUDA_CHECK(cudaMemcpy(buf.data(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return buf;
}

template <typename T>
std::vector<T> to_host(const cuda::DeviceBuffer& buf, size_t n) {
  KPT_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<T> host(n);
  KPT_CUDA_CHECK(cudaMemcpy(host.data(), buf.data(), n * sizeof(T), cudaMemcpyDeviceToHost));
  return host;
}

// Output poisoned with NaN before a kernel runs: an element the kernel forgets fails the test.
inline cuda::DeviceBuffer poisoned(size_t n) {
  return to_device(std::vector<float>(n, std::nanf("")));
}

inline std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// max |a - b| / max |b|; NaN anywhere gives infinity.
inline double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double max_abs = 0, max_ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return INFINITY;
    max_abs = std::max(max_abs, static_cast<double>(std::abs(a[i] - b[i])));
    max_ref = std::max(max_ref, static_cast<double>(std::abs(b[i])));
  }
  return max_ref > 0 ? max_abs / max_ref : max_abs;
}

}  // namespace kpt::test
