// NumPy .npy files (format 1.0): what `forward --output` writes and what tests read.
#pragma once

#include <string>

#include "kpt/tensor.h"

namespace kpt::io {

// Writes f32 (or i64) tensors, C order, little-endian.
void write_npy(const std::string& path, const Tensor& tensor);
// Reads <f4, <f8 (converted to f32), <i8 (i64) and <i4 arrays in C order.
Tensor read_npy(const std::string& path);

}  // namespace kpt::io
