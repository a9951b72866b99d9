// Hardware detection answers on any machine, consistently with itself, and quickly.
#include <chrono>

#include <gtest/gtest.h>

#include "optimize/hardware.h"

namespace kpt::hw {
namespace {

TEST(Hardware, CpuIsConsistent) {
  const CpuInfo c = detect_cpu();
  EXPECT_GT(c.logical_cores, 0);
  EXPECT_GT(c.usable_cores, 0);
  EXPECT_LE(c.usable_cores, c.logical_cores);
  // Implications that hold on every x86 CPU: the wider extension needs the narrower one.
  if (c.avx2) {
    EXPECT_TRUE(c.avx);
  }
  if (c.avx512bw || c.avx512_bf16 || c.avx512_vnni) {
    EXPECT_TRUE(c.avx512f);
  }
  if (c.amx_bf16 || c.amx_int8) {
    EXPECT_TRUE(c.amx_tile);
  }
  EXPECT_EQ(c.flags().size(),
            static_cast<size_t>(c.sse42 + c.avx + c.avx2 + c.fma + c.f16c + c.avx_vnni + c.avx512f +
                                c.avx512bw + c.avx512vl + c.avx512_vnni + c.avx512_bf16 +
                                c.avx512_fp16 + c.amx_tile + c.amx_bf16 + c.amx_int8));
}

TEST(Hardware, MemoryIsPlausible) {
  const MemoryInfo m = detect_memory();
  EXPECT_GT(m.total_bytes, int64_t{64} << 20);
  EXPECT_LE(m.available_bytes, m.total_bytes);
}

TEST(Hardware, GpuQueryReturnsWithinItsTimeout) {
  const auto t0 = std::chrono::steady_clock::now();
  const GpuReport r = detect_gpus(3000);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 4.0);
  if (r.gpus.empty()) {
    EXPECT_FALSE(r.error.empty());  // says why
  }
  for (const auto& g : r.gpus) {
    EXPECT_FALSE(g.name.empty());
    EXPECT_GT(g.cc_major, 0);
    EXPECT_GT(g.memory_bytes, 0);
  }
}

TEST(Hardware, CudaVersionString) {
  EXPECT_EQ(cuda_version_string(13000), "13.0");
  EXPECT_EQ(cuda_version_string(12080), "12.8");
  EXPECT_EQ(cuda_version_string(0), "");
}

}  // namespace
}  // namespace kpt::hw
