#include "backends/cuda/device_memory.h"

#include <utility>

#include "backends/cuda/check.h"
#include "kpt/status.h"

namespace kpt::cuda {

DeviceBuffer::DeviceBuffer(size_t size_bytes) : size_bytes_(size_bytes) {
  if (size_bytes > 0) KPT_CUDA_CHECK(cudaMalloc(&data_, size_bytes));
}

DeviceBuffer::~DeviceBuffer() {
  // Destructors must not throw; a failing cudaFree here means the context is already gone.
  if (data_ != nullptr) (void)cudaFree(data_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_bytes_(std::exchange(other.size_bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) (void)cudaFree(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_bytes_ = std::exchange(other.size_bytes_, 0);
  }
  return *this;
}

CachingAllocator::~CachingAllocator() {
  for (auto& [size, p] : free_) (void)cudaFree(p);
  for (auto& [p, size] : in_use_) (void)cudaFree(p);
}

// 512-byte granularity below 1 MiB, then 1/8 steps of the next power of two: a few size classes
// serve every shape of one model, and the waste stays under 12.5%.
size_t CachingAllocator::round_up(size_t size_bytes) {
  if (size_bytes == 0) size_bytes = 1;
  if (size_bytes < (size_t{1} << 20)) return (size_bytes + 511) / 512 * 512;
  size_t pow2 = size_t{1} << 20;
  while (pow2 < size_bytes) pow2 <<= 1;
  const size_t step = pow2 / 8;
  return (size_bytes + step - 1) / step * step;
}

void* CachingAllocator::allocate(size_t size_bytes) {
  const size_t rounded = round_up(size_bytes);
  auto it = free_.find(rounded);
  void* p = nullptr;
  if (it != free_.end()) {
    p = it->second;
    free_.erase(it);
  } else {
    KPT_CUDA_CHECK(cudaMalloc(&p, rounded));
    ++n_device_allocations_;
    cached_bytes_ += rounded;
  }
  in_use_.emplace(p, rounded);
  return p;
}

void CachingAllocator::release(void* ptr) {
  auto it = in_use_.find(ptr);
  KPT_CHECK(it != in_use_.end(), "release of a pointer this allocator did not hand out");
  free_.emplace(it->second, ptr);
  in_use_.erase(it);
}

std::shared_ptr<void> PinnedHostPool::acquire(size_t size_bytes) {
  for (Block& b : blocks_) {
    if (b.size_bytes >= size_bytes && b.data.use_count() == 1) return b.data;
  }
  if (blocks_.size() >= kMaxBlocks) {
    // Replace the smallest free block, if any, by a larger one; else give up (pageable copy).
    Block* smallest = nullptr;
    for (Block& b : blocks_) {
      if (b.data.use_count() == 1 && (smallest == nullptr || b.size_bytes < smallest->size_bytes)) smallest = &b;
    }
    if (smallest == nullptr) return nullptr;
    smallest->data.reset();
    smallest->size_bytes = 0;
  }
  void* p = nullptr;
  KPT_CUDA_CHECK(cudaHostAlloc(&p, size_bytes, cudaHostAllocDefault));
  std::shared_ptr<void> data(p, [](void* q) { (void)cudaFreeHost(q); });
  for (Block& b : blocks_) {
    if (b.data == nullptr) {
      b = {data, size_bytes};
      return data;
    }
  }
  blocks_.push_back({data, size_bytes});
  return data;
}

}  // namespace kpt::cuda
