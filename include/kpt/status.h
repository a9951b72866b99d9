// Errors: kpt::Error for anything a caller can cause, KPT_CHECK for broken invariants.
// Nothing in the library aborts the process: it lives inside Python processes and servers.
#pragma once

#include <stdexcept>
#include <string>

namespace kpt {

enum class ErrorCode {
  kInvalidArgument,  // bad value from the caller: shapes, ids, options
  kNotFound,         // a file, tensor or key that should exist does not
  kInvalidFile,      // a file exists but is malformed (safetensors, JSON, tokenizer)
  kUnsupported,      // valid request this build or model cannot serve
  kOutOfRange,       // index or size beyond a limit (token id >= vocab, context length)
  kOutOfMemory,
  kIo,               // the operating system refused (open, mmap, write)
  kInternal,         // a broken invariant: a bug in KernelPyTorch
};

const char* error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] void throw_check_failure(const char* condition, const char* file, int line,
                                      const std::string& message);

}  // namespace kpt

// Invariant check: a failure is a bug, reported with file:line as ErrorCode::kInternal.
#define KPT_CHECK(cond, msg)                                                  \
  do {                                                                        \
    if (!(cond)) ::kpt::throw_check_failure(#cond, __FILE__, __LINE__, (msg)); \
  } while (0)
