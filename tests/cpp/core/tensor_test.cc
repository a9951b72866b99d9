#include <cmath>
#include <cstring>

#include <gtest/gtest.h>

#include "kpt/tensor.h"

namespace kpt {

TEST(DType, HalfRoundTripsEveryFiniteValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto bits = static_cast<uint16_t>(h);
    if ((bits & 0x7c00) == 0x7c00 && (bits & 0x3ff) != 0) continue;  // NaN payloads
    EXPECT_EQ(f32_to_f16(f16_to_f32(bits)), bits) << std::hex << h;
  }
}

TEST(DType, HalfRoundsToNearestEven) {
  // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1.0).
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // rounds to infinity
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);            // half of the smallest subnormal: even
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
}

TEST(DType, BFloat16) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);  // tie to even
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(Tensor, ShapeAndConversion) {
  std::vector<float> v = {1, 2, 3, 4, 5, 6};
  Tensor t = Tensor::from_f32(v, {2, 3});
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.dim(-1), 3);
  EXPECT_EQ(shape_str(t.shape()), "[2, 3]");
  Tensor r = t.reshape({3, 2});
  EXPECT_EQ(r.data<float>()[5], 6.0f);
  EXPECT_THROW(t.reshape({4, 2}), Error);
  Tensor h = Tensor::empty(DType::kF16, {2});
  h.data<uint16_t>()[0] = f32_to_f16(0.5f);
  h.data<uint16_t>()[1] = f32_to_f16(-2.0f);
  auto f = h.to_f32_vector();
  EXPECT_EQ(f[0], 0.5f);
  EXPECT_EQ(f[1], -2.0f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(Tensor::empty(DType::kF32, {3}).raw()) % 64, 0u);
}

TEST(Tensor, CheckFailureNamesFileAndLine) {
  try {
    Tensor::from_f32(std::vector<float>{1, 2}, {3});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInternal);
    EXPECT_NE(std::string(e.what()).find("tensor.cc:"), std::string::npos) << e.what();
  }
}

}  // namespace kpt
