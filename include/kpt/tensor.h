// Tensor and Storage: a typed, shaped view over reference-counted bytes. Storage may own an
// aligned allocation or borrow bytes kept alive by another object (a safetensors mmap).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kpt/status.h"

namespace kpt {

enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kI32,
  kI64,
  kI8,       // reserved for int8 quantization
  kF8E4M3,   // reserved for fp8 on Hopper
};

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // "f32", "f16", ...

using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2, 3, 4]"

// Bytes with a lifetime. `keepalive` holds whatever owns the memory (an allocation or an mmap).
class Storage {
 public:
  static std::shared_ptr<Storage> allocate(size_t size_bytes);  // 64-byte aligned, zeroed
  static std::shared_ptr<Storage> borrow(void* data, size_t size_bytes,
                                         std::shared_ptr<const void> keepalive);
  void* data() const { return data_; }
  size_t size_bytes() const { return size_bytes_; }

 private:
  void* data_ = nullptr;
  size_t size_bytes_ = 0;
  std::shared_ptr<const void> keepalive_;
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(std::shared_ptr<Storage> storage, DType dtype, Shape shape, size_t offset_bytes = 0);

  static Tensor empty(DType dtype, Shape shape);  // zero-filled
  static Tensor from_f32(std::span<const float> values, Shape shape);
  static Tensor from_i64(std::span<const int64_t> values, Shape shape);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const;  // negative counts from the end
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t size_bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

  void* raw() const { return static_cast<char*>(storage_->data()) + offset_bytes_; }
  template <typename T>
  T* data() const {
    return static_cast<T*>(raw());
  }
  // Same bytes, new shape (numel must match).
  Tensor reshape(Shape shape) const;
  // A copy converted to f32 (f32/f16/bf16/i32/i64 sources).
  Tensor to_f32() const;
  std::vector<float> to_f32_vector() const;

 private:
  std::shared_ptr<Storage> storage_;
  DType dtype_ = DType::kF32;
  Shape shape_;
  size_t offset_bytes_ = 0;
};

// Scalar conversions, exact round-to-nearest-even as in PyTorch.
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t b);
// fp32 -> bf16, round to nearest even (NaN stays a quiet NaN). Inline so that hot conversion
// loops (the CPU bf16 GEMM's activations) vectorize it.
inline uint16_t f32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet nan
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

}  // namespace kpt
