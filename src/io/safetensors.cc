#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace kpt::io {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The reference implementation refuses headers over 100 MB; so do we.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

[[noreturn]] void bad_file(const std::string& source, const std::string& what) {
  throw Error(ErrorCode::kInvalidFile, fmt::format("{}: invalid safetensors file: {}", source, what));
}

size_t dtype_str_size(const std::string& d) {
  static const std::map<std::string, size_t> kSizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I16", 2}, {"U16", 2},
      {"F16", 2},  {"BF16", 2}, {"I32", 4}, {"U32", 4},     {"F32", 4},     {"I64", 8}, {"U64", 8},
      {"F64", 8}};
  auto it = kSizes.find(d);
  return it == kSizes.end() ? 0 : it->second;
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

DType safetensors_dtype(const std::string& d, const std::string& context) {
  if (d == "F32") return DType::kF32;
  if (d == "F16") return DType::kF16;
  if (d == "BF16") return DType::kBF16;
  if (d == "I32") return DType::kI32;
  if (d == "I64") return DType::kI64;
  if (d == "I8") return DType::kI8;
  if (d == "F8_E4M3") return DType::kF8E4M3;
  throw Error(ErrorCode::kUnsupported,
              fmt::format("{}: dtype {} is not supported (supported: F32, F16, BF16, I32, I64)", context, d));
}

SafetensorsHeader parse_safetensors_header(std::string_view header_json, size_t data_size,
                                           const std::string& source) {
  json root;
  try {
    root = json::parse(header_json.begin(), header_json.end());
  } catch (const json::exception& e) {
    bad_file(source, fmt::format("header is not valid JSON ({})", e.what()));
  }
  if (!root.is_object()) bad_file(source, "header must be a JSON object");

  SafetensorsHeader header;
  for (auto item = root.begin(); item != root.end(); ++item) {
    const std::string name = item.key();
    const json& entry = item.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) bad_file(source, "__metadata__ must be an object of strings");
      for (auto& [k, v] : entry.items()) {
        if (!v.is_string()) bad_file(source, fmt::format("__metadata__ value of '{}' is not a string", k));
        header.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    auto where = [&](const std::string& what) { bad_file(source, fmt::format("tensor '{}': {}", name, what)); };
    if (!entry.is_object()) where("entry must be an object with dtype, shape and data_offsets");
    TensorInfo t;
    t.name = name;
    auto dt = entry.find("dtype");
    if (dt == entry.end() || !dt->is_string()) where("missing or non-string 'dtype'");
    t.dtype_str = dt->get<std::string>();
    size_t elem = dtype_str_size(t.dtype_str);
    if (elem == 0) where(fmt::format("unknown dtype '{}'", t.dtype_str));

    auto sh = entry.find("shape");
    if (sh == entry.end() || !sh->is_array()) where("missing or non-array 'shape'");
    uint64_t numel = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned()) where(fmt::format("shape {} has a dimension that is not a non-negative integer", sh->dump()));
      uint64_t v = d.get<uint64_t>();
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) || mul_overflows(numel, v, &numel)) {
        where(fmt::format("shape {} overflows", sh->dump()));
      }
      t.shape.push_back(static_cast<int64_t>(v));
    }
    auto off = entry.find("data_offsets");
    if (off == entry.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned()) {
      where("'data_offsets' must be [begin, end] of non-negative integers");
    }
    uint64_t begin = (*off)[0].get<uint64_t>();
    uint64_t end = (*off)[1].get<uint64_t>();
    if (begin > end) where(fmt::format("data_offsets [{}, {}] has begin > end", begin, end));
    if (end > data_size) {
      where(fmt::format("data_offsets [{}, {}] point outside the data buffer of {} bytes (file truncated?)",
                        begin, end, data_size));
    }
    uint64_t expected_bytes = 0;
    if (mul_overflows(numel, elem, &expected_bytes) || expected_bytes != end - begin) {
      where(fmt::format("dtype {} shape {} needs {} bytes but data_offsets [{}, {}] hold {}", t.dtype_str,
                        shape_str(t.shape), numel * elem, begin, end, end - begin));
    }
    t.begin = begin;
    t.end = end;
    header.tensors.push_back(std::move(t));
  }

  std::sort(header.tensors.begin(), header.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  size_t cursor = 0;
  for (const auto& t : header.tensors) {
    if (t.begin < cursor) {
      bad_file(source, fmt::format("tensor '{}' at [{}, {}] overlaps the previous tensor ending at {}", t.name,
                                   t.begin, t.end, cursor));
    }
    if (t.begin > cursor) {
      bad_file(source, fmt::format("bytes [{}, {}) before tensor '{}' belong to no tensor", cursor, t.begin, t.name));
    }
    cursor = t.end;
  }
  if (cursor != data_size) {
    bad_file(source, fmt::format("data buffer has {} bytes but the tensors cover {}", data_size, cursor));
  }
  return header;
}

SafetensorsHeader parse_safetensors_bytes(const uint8_t* bytes, size_t size, const std::string& source) {
  if (size < 8) bad_file(source, fmt::format("file has {} bytes; at least 8 are needed for the header length", size));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n > kMaxHeaderBytes) bad_file(source, fmt::format("header length {} exceeds the 100 MB limit", n));
  if (n > size - 8) {
    bad_file(source, fmt::format("header length {} exceeds the {} bytes after the length field (file truncated?)", n,
                                 size - 8));
  }
  if (n < 2 || bytes[8] != '{') bad_file(source, "header does not start with '{'");
  std::string_view header(reinterpret_cast<const char*>(bytes + 8), n);
  return parse_safetensors_header(header, size - 8 - n, source);
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const char* dt = nullptr;
    switch (t.dtype()) {
      case DType::kF32: dt = "F32"; break;
      case DType::kF16: dt = "F16"; break;
      case DType::kBF16: dt = "BF16"; break;
      case DType::kI32: dt = "I32"; break;
      case DType::kI64: dt = "I64"; break;
      case DType::kI8: dt = "I8"; break;
      case DType::kF8E4M3: dt = "F8_E4M3"; break;
    }
    header[name] = {{"dtype", dt}, {"shape", t.shape()}, {"data_offsets", {offset, offset + t.size_bytes()}}};
    offset += t.size_bytes();
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error(ErrorCode::kIo, fmt::format("cannot write {}", path));
  uint64_t n = text.size();
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out.write(len, 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& [name, t] : tensors) out.write(static_cast<const char*>(t.raw()), static_cast<std::streamsize>(t.size_bytes()));
  if (!out) throw Error(ErrorCode::kIo, fmt::format("error while writing {}", path));
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw Error(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw Error(ErrorCode::kIo, fmt::format("cannot stat {}: {}", path, std::strerror(err)));
  }
  size_t size = static_cast<size_t>(st.st_size);
  void* map = nullptr;
  if (size > 0) {
    map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    ::close(fd);
    if (map == MAP_FAILED) throw Error(ErrorCode::kIo, fmt::format("cannot mmap {}: {}", path, std::strerror(err)));
  } else {
    ::close(fd);
  }
  auto file = std::shared_ptr<SafetensorsFile>(new SafetensorsFile());
  file->path_ = path;
  file->mapping_ = std::shared_ptr<const void>(map, [size](const void* p) {
    if (p != nullptr) ::munmap(const_cast<void*>(p), size);
  });
  const auto* bytes = static_cast<const uint8_t*>(map);
  file->header_ = parse_safetensors_bytes(bytes, size, path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  file->data_ = bytes + 8 + n;
  for (size_t i = 0; i < file->header_.tensors.size(); ++i) file->index_[file->header_.tensors[i].name] = i;
  return file;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

Tensor SafetensorsFile::get(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (t == nullptr) throw Error(ErrorCode::kNotFound, fmt::format("{}: no tensor named '{}'", path_, name));
  DType dtype = safetensors_dtype(t->dtype_str, fmt::format("{}: tensor '{}'", path_, name));
  const uint8_t* p = data_ + t->begin;
  size_t bytes = t->end - t->begin;
  if (reinterpret_cast<uintptr_t>(p) % dtype_size(dtype) == 0) {
    auto storage = Storage::borrow(const_cast<uint8_t*>(p), bytes, mapping_);
    return Tensor(storage, dtype, t->shape);
  }
  Tensor copy = Tensor::empty(dtype, t->shape);
  if (bytes > 0) std::memcpy(copy.raw(), p, bytes);
  return copy;
}

WeightStore WeightStore::from_files(std::vector<std::shared_ptr<SafetensorsFile>> files) {
  WeightStore store;
  store.files_ = std::move(files);
  for (size_t i = 0; i < store.files_.size(); ++i) {
    for (const auto& t : store.files_[i]->header().tensors) {
      auto [it, inserted] = store.where_.emplace(t.name, i);
      if (!inserted) {
        throw Error(ErrorCode::kInvalidFile, fmt::format("tensor '{}' appears in both {} and {}", t.name,
                                                         store.files_[it->second]->path(), store.files_[i]->path()));
      }
    }
  }
  return store;
}

WeightStore WeightStore::open_dir(const std::string& model_dir) {
  fs::path dir(model_dir);
  fs::path single = dir / "model.safetensors";
  fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    json j;
    try {
      std::ifstream in(index);
      j = json::parse(in);
    } catch (const json::exception& e) {
      throw Error(ErrorCode::kInvalidFile, fmt::format("{}: not valid JSON ({})", index.string(), e.what()));
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
      throw Error(ErrorCode::kInvalidFile, fmt::format("{}: missing object 'weight_map'", index.string()));
    }
    std::map<std::string, std::shared_ptr<SafetensorsFile>> shards;
    std::vector<std::shared_ptr<SafetensorsFile>> files;
    for (auto& [name, shard] : j["weight_map"].items()) {
      if (!shard.is_string()) {
        throw Error(ErrorCode::kInvalidFile, fmt::format("{}: weight_map['{}'] is not a file name", index.string(), name));
      }
      std::string file = shard.get<std::string>();
      if (file.find('/') != std::string::npos || file == "..") {
        throw Error(ErrorCode::kInvalidFile,
                    fmt::format("{}: shard name '{}' must be a file in the model directory", index.string(), file));
      }
      if (!shards.count(file)) {
        auto f = SafetensorsFile::open((dir / file).string());
        shards[file] = f;
        files.push_back(f);
      }
    }
    WeightStore store = from_files(files);
    for (auto& [name, shard] : j["weight_map"].items()) {
      auto it = store.where_.find(name);
      if (it == store.where_.end() || store.files_[it->second]->path() != (dir / shard.get<std::string>()).string()) {
        throw Error(ErrorCode::kInvalidFile, fmt::format("{}: weight_map says '{}' is in {}, but it is not there",
                                                         index.string(), name, shard.get<std::string>()));
      }
    }
    return store;
  }
  if (fs::exists(single)) return from_files({SafetensorsFile::open(single.string())});
  if (fs::exists(dir / "pytorch_model.bin")) {
    throw Error(ErrorCode::kUnsupported,
                fmt::format("{} holds only pytorch_model.bin; convert it to safetensors first "
                            "(transformers: model.save_pretrained(dir, safe_serialization=True))",
                            model_dir));
  }
  throw Error(ErrorCode::kNotFound,
              fmt::format("{} has neither model.safetensors nor model.safetensors.index.json", model_dir));
}

const TensorInfo& WeightStore::info(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw Error(ErrorCode::kNotFound, fmt::format("no tensor named '{}' in the checkpoint", name));
  return *files_[it->second]->find(name);
}

Tensor WeightStore::get(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw Error(ErrorCode::kNotFound, fmt::format("no tensor named '{}' in the checkpoint", name));
  return files_[it->second]->get(name);
}

const std::string& WeightStore::file_of(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw Error(ErrorCode::kNotFound, fmt::format("no tensor named '{}' in the checkpoint", name));
  return files_[it->second]->path();
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size());
  for (const auto& [name, _] : where_) out.push_back(name);
  return out;
}

}  // namespace kpt::io
