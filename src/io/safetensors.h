// safetensors: memory-mapped, fully validated before any tensor is touched.
// Format: u64 little-endian header length N, N bytes of JSON header, then the data buffer.
// Every entry's data_offsets are checked against the buffer (in bounds, no overlaps, no holes,
// byte length = numel x dtype size) as the reference implementation does.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kpt/tensor.h"

namespace kpt::io {

struct TensorInfo {
  std::string name;
  std::string dtype_str;   // as written: "F32", "BF16", ...
  Shape shape;
  size_t begin = 0;        // byte offsets into the data buffer
  size_t end = 0;
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // sorted by begin offset
  std::map<std::string, std::string> metadata;
};

// Parses and validates a header against a data buffer of `data_size` bytes. `source` names the
// file in error messages. Throws kpt::Error(kInvalidFile) naming the offending entry.
SafetensorsHeader parse_safetensors_header(std::string_view header_json, size_t data_size,
                                           const std::string& source);

// Validates a whole file image (8-byte length + header + data) without touching the disk.
SafetensorsHeader parse_safetensors_bytes(const uint8_t* bytes, size_t size, const std::string& source);

// Maps a supported safetensors dtype string to DType; throws kUnsupported for others (F64, ...).
DType safetensors_dtype(const std::string& dtype_str, const std::string& context);

// Writes tensors (f32/f16/bf16/i32/i64) in the order given, header padded to 8 bytes.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

class SafetensorsFile {
 public:
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);

  const std::string& path() const { return path_; }
  const SafetensorsHeader& header() const { return header_; }
  const TensorInfo* find(const std::string& name) const;
  // A zero-copy view into the mapping when the data is aligned for its dtype, else a copy.
  Tensor get(const std::string& name) const;

 private:
  std::string path_;
  SafetensorsHeader header_;
  std::shared_ptr<const void> mapping_;  // munmap on release
  const uint8_t* data_ = nullptr;        // start of the data buffer
  std::map<std::string, size_t> index_;  // name -> position in header_.tensors
};

// All tensors of a checkpoint directory: `model.safetensors`, or the shards listed by
// `model.safetensors.index.json`.
class WeightStore {
 public:
  static WeightStore open_dir(const std::string& model_dir);
  static WeightStore from_files(std::vector<std::shared_ptr<SafetensorsFile>> files);

  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;
  Tensor get(const std::string& name) const;
  std::vector<std::string> names() const;
  const std::string& file_of(const std::string& name) const;

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor name -> file index
};

}  // namespace kpt::io
