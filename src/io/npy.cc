#include "io/npy.h"

#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>
#include <vector>

#include <fmt/format.h>

namespace kpt::io {

void write_npy(const std::string& path, const Tensor& tensor) {
  const char* descr = nullptr;
  switch (tensor.dtype()) {
    case DType::kF32: descr = "<f4"; break;
    case DType::kI64: descr = "<i8"; break;
    case DType::kI32: descr = "<i4"; break;
    default:
      throw Error(ErrorCode::kUnsupported, fmt::format("write_npy: dtype {} is not supported", dtype_name(tensor.dtype())));
  }
  std::string shape;
  for (size_t i = 0; i < tensor.shape().size(); ++i) shape += fmt::format("{}, ", tensor.shape()[i]);
  if (tensor.shape().size() > 1) shape.resize(shape.size() - 2);  // (n,) keeps its comma
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", descr, shape);
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error(ErrorCode::kIo, fmt::format("cannot write {}", path));
  const char magic[] = "\x93NUMPY\x01\x00";
  out.write(magic, 8);
  uint16_t len = static_cast<uint16_t>(header.size());
  out.put(static_cast<char>(len & 0xff));
  out.put(static_cast<char>(len >> 8));
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(static_cast<const char*>(tensor.raw()), static_cast<std::streamsize>(tensor.size_bytes()));
  if (!out) throw Error(ErrorCode::kIo, fmt::format("error while writing {}", path));
}

Tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, fmt::format("cannot open {}", path));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto bad = [&](const std::string& why) -> Error {
    return Error(ErrorCode::kInvalidFile, fmt::format("{}: not a supported .npy file: {}", path, why));
  };
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0) throw bad("bad magic");
  size_t header_len = 0;
  size_t start = 0;
  if (bytes[6] == 1) {
    header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<size_t>(static_cast<uint8_t>(bytes[9])) << 8);
    start = 10;
  } else {
    if (bytes.size() < 12) throw bad("truncated");
    header_len = 0;
    for (int i = 3; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(bytes[8 + i]);
    start = 12;
  }
  if (start + header_len > bytes.size()) throw bad("truncated header");
  std::string header(bytes.data() + start, header_len);
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([^']+)'"))) throw bad("no descr");
  std::string descr = m[1];
  if (header.find("'fortran_order': True") != std::string::npos) throw bad("fortran order");
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)"))) throw bad("no shape");
  Shape shape;
  std::string dims = m[1];
  std::regex num("[0-9]+");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), num); it != std::sregex_iterator(); ++it) {
    shape.push_back(std::stoll(it->str()));
  }
  const char* data = bytes.data() + start + header_len;
  size_t avail = bytes.size() - start - header_len;
  int64_t n = shape_numel(shape);
  auto need = [&](size_t elem) {
    if (avail < static_cast<size_t>(n) * elem) throw bad("data shorter than the shape says");
  };
  if (descr == "<f4") {
    need(4);
    Tensor t = Tensor::empty(DType::kF32, shape);
    std::memcpy(t.raw(), data, static_cast<size_t>(n) * 4);
    return t;
  }
  if (descr == "<f8") {
    need(8);
    Tensor t = Tensor::empty(DType::kF32, shape);
    for (int64_t i = 0; i < n; ++i) {
      double d;
      std::memcpy(&d, data + i * 8, 8);
      t.data<float>()[i] = static_cast<float>(d);
    }
    return t;
  }
  if (descr == "<i8" || descr == "<i4") {
    size_t elem = descr == "<i8" ? 8 : 4;
    need(elem);
    Tensor t = Tensor::empty(DType::kI64, shape);
    for (int64_t i = 0; i < n; ++i) {
      if (elem == 8) {
        std::memcpy(&t.data<int64_t>()[i], data + i * 8, 8);
      } else {
        int32_t v;
        std::memcpy(&v, data + i * 4, 4);
        t.data<int64_t>()[i] = v;
      }
    }
    return t;
  }
  throw bad(fmt::format("dtype {}", descr));
}

}  // namespace kpt::io
