#include "kpt/tensor.h"

#include <cstdlib>
#include <new>

#include <fmt/format.h>

namespace kpt {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 4;
    case DType::kF16: return 2;
    case DType::kBF16: return 2;
    case DType::kI32: return 4;
    case DType::kI64: return 8;
    case DType::kI8: return 1;
    case DType::kF8E4M3: return 1;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "f32";
    case DType::kF16: return "f16";
    case DType::kBF16: return "bf16";
    case DType::kI32: return "i32";
    case DType::kI64: return "i64";
    case DType::kI8: return "i8";
    case DType::kF8E4M3: return "f8e4m3";
  }
  return "?";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

namespace {
constexpr size_t kAlignment = 64;  // cache line; also the widest vector (AVX-512)
}

std::shared_ptr<Storage> Storage::allocate(size_t size_bytes) {
  size_t rounded = (size_bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (p == nullptr) {
    throw Error(ErrorCode::kOutOfMemory,
                fmt::format("could not allocate {} bytes of host memory", size_bytes));
  }
  std::memset(p, 0, rounded);
  auto s = std::make_shared<Storage>();
  s->data_ = p;
  s->size_bytes_ = size_bytes;
  s->keepalive_ = std::shared_ptr<const void>(p, [](const void* q) { std::free(const_cast<void*>(q)); });
  return s;
}

std::shared_ptr<Storage> Storage::borrow(void* data, size_t size_bytes,
                                         std::shared_ptr<const void> keepalive) {
  auto s = std::make_shared<Storage>();
  s->data_ = data;
  s->size_bytes_ = size_bytes;
  s->keepalive_ = std::move(keepalive);
  return s;
}

Tensor::Tensor(std::shared_ptr<Storage> storage, DType dtype, Shape shape, size_t offset_bytes)
    : storage_(std::move(storage)), dtype_(dtype), shape_(std::move(shape)), offset_bytes_(offset_bytes) {
  for (int64_t d : shape_) {
    if (d < 0) throw Error(ErrorCode::kInvalidArgument, fmt::format("negative dimension in shape {}", shape_str(shape_)));
  }
  KPT_CHECK(storage_ != nullptr, "tensor without storage");
  KPT_CHECK(offset_bytes_ + size_bytes() <= storage_->size_bytes(),
            fmt::format("tensor {} {} at offset {} exceeds storage of {} bytes", dtype_name(dtype_),
                        shape_str(shape_), offset_bytes_, storage_->size_bytes()));
}

Tensor Tensor::empty(DType dtype, Shape shape) {
  size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  return Tensor(Storage::allocate(bytes), dtype, std::move(shape));
}

Tensor Tensor::from_f32(std::span<const float> values, Shape shape) {
  KPT_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_f32: size/shape mismatch");
  Tensor t = empty(DType::kF32, std::move(shape));
  std::memcpy(t.raw(), values.data(), values.size_bytes());
  return t;
}

Tensor Tensor::from_i64(std::span<const int64_t> values, Shape shape) {
  KPT_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_i64: size/shape mismatch");
  Tensor t = empty(DType::kI64, std::move(shape));
  std::memcpy(t.raw(), values.data(), values.size_bytes());
  return t;
}

int64_t Tensor::dim(int i) const {
  int r = rank();
  int j = i < 0 ? i + r : i;
  KPT_CHECK(j >= 0 && j < r, fmt::format("dim {} of a rank-{} tensor", i, r));
  return shape_[static_cast<size_t>(j)];
}

Tensor Tensor::reshape(Shape shape) const {
  KPT_CHECK(shape_numel(shape) == numel(),
            fmt::format("reshape {} to {}", shape_str(shape_), shape_str(shape)));
  return Tensor(storage_, dtype_, std::move(shape), offset_bytes_);
}

Tensor Tensor::to_f32() const {
  Tensor out = empty(DType::kF32, shape_);
  float* dst = out.data<float>();
  const int64_t n = numel();
  switch (dtype_) {
    case DType::kF32: std::memcpy(dst, raw(), size_bytes()); break;
    case DType::kF16: {
      const auto* src = data<uint16_t>();
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
      break;
    }
    case DType::kBF16: {
      const auto* src = data<uint16_t>();
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
      break;
    }
    case DType::kI32: {
      const auto* src = data<int32_t>();
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]);
      break;
    }
    case DType::kI64: {
      const auto* src = data<int64_t>();
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]);
      break;
    }
    default:
      throw Error(ErrorCode::kUnsupported,
                  fmt::format("conversion from {} to f32 is not supported", dtype_name(dtype_)));
  }
  return out;
}

std::vector<float> Tensor::to_f32_vector() const {
  Tensor t = to_f32();
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

// IEEE half <-> float, bit-exact round-to-nearest-even.
float f16_to_f32(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or nan
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0));
  }
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow to inf
  if (abs < 0x38800000u) {  // subnormal or zero in half: value = r * 2^-24
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // below half of the smallest
    uint32_t e = abs >> 23;
    uint32_t m = (abs & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;
    uint32_t r = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (r & 1u))) ++r;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = abs - 0x38000000u;  // rebias exponent 127 -> 15
  uint32_t out = r >> 13;
  uint32_t rem = r & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (out & 1u))) ++out;
  return static_cast<uint16_t>(sign | out);
}

float bf16_to_f32(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace kpt
