#include "kpt/status.h"

#include <fmt/format.h>

namespace kpt {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kNotFound: return "not found";
    case ErrorCode::kInvalidFile: return "invalid file";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kOutOfRange: return "out of range";
    case ErrorCode::kOutOfMemory: return "out of memory";
    case ErrorCode::kIo: return "i/o error";
    case ErrorCode::kInternal: return "internal error";
  }
  return "unknown error";
}

void throw_check_failure(const char* condition, const char* file, int line,
                         const std::string& message) {
  throw Error(ErrorCode::kInternal,
              fmt::format("internal check failed at {}:{}: {} ({}); this is a bug in KernelPyTorch",
                          file, line, message, condition));
}

}  // namespace kpt
