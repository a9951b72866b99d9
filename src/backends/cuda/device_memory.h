// Device memory for one executable. Activations come from a caching allocator: a freed block goes
// back to a free list keyed by its rounded size and is handed out again, so after the first
// steps of a shape no cudaMalloc happens (everything runs on one stream, so stream order alone
// makes reuse safe). DeviceBuffer is a plain owning allocation for weights and K/V pools.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

namespace kpt::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t size_bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  size_t size_bytes() const { return size_bytes_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }

 private:
  void* data_ = nullptr;
  size_t size_bytes_ = 0;
};

class CachingAllocator {
 public:
  CachingAllocator() = default;
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  void* allocate(size_t size_bytes);
  void release(void* ptr);  // back to the free list; the memory stays with the device

  int64_t n_device_allocations() const { return n_device_allocations_; }  // cudaMalloc calls so far
  size_t cached_bytes() const { return cached_bytes_; }

 private:
  static size_t round_up(size_t size_bytes);
  std::multimap<size_t, void*> free_;  // rounded size -> block
  std::map<void*, size_t> in_use_;     // block -> rounded size
  int64_t n_device_allocations_ = 0;
  size_t cached_bytes_ = 0;
};

// Page-locked host memory for large outputs copied back from the device: a pinned copy runs at
// the link's rate (pageable copies are staged through a driver buffer) and needs no zero-filled
// host tensor first. A block is handed out again once every tensor that borrowed it is gone
// (its use count is back to the pool's own reference); at most kMaxBlocks are kept.
class PinnedHostPool {
 public:
  PinnedHostPool() = default;
  PinnedHostPool(const PinnedHostPool&) = delete;
  PinnedHostPool& operator=(const PinnedHostPool&) = delete;
  // A block of at least size_bytes and its keep-alive handle; null when kMaxBlocks are all in use
  // (the caller then copies to pageable memory).
  std::shared_ptr<void> acquire(size_t size_bytes);

 private:
  static constexpr size_t kMaxBlocks = 8;
  struct Block {
    std::shared_ptr<void> data;
    size_t size_bytes = 0;
  };
  std::vector<Block> blocks_;
};

// A scratch allocation released to its allocator when it goes out of scope.
class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ScratchBuffer(CachingAllocator& alloc, size_t size_bytes) : alloc_(&alloc), data_(alloc.allocate(size_bytes)) {}
  ~ScratchBuffer() { reset(); }
  ScratchBuffer(ScratchBuffer&& o) noexcept : alloc_(o.alloc_), data_(o.data_) { o.data_ = nullptr; }
  ScratchBuffer& operator=(ScratchBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      alloc_ = o.alloc_;
      data_ = o.data_;
      o.data_ = nullptr;
    }
    return *this;
  }
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  void reset() {
    if (data_ != nullptr) alloc_->release(data_);
    data_ = nullptr;
  }
  void* data() const { return data_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }

 private:
  CachingAllocator* alloc_ = nullptr;
  void* data_ = nullptr;
};

}  // namespace kpt::cuda
