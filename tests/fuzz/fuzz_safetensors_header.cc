// libFuzzer: any byte string given to the safetensors parser must yield a valid header or a
// kpt::Error(kInvalidFile) — never a crash, hang, leak or other exception.
#include <cstdint>
#include <cstdlib>

#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    kpt::io::SafetensorsHeader h = kpt::io::parse_safetensors_bytes(data, size, "fuzz");
    // A header that parsed must describe tensors inside the data buffer.
    for (const auto& t : h.tensors) {
      if (t.begin > t.end) std::abort();
    }
  } catch (const kpt::Error& e) {
    if (e.code() != kpt::ErrorCode::kInvalidFile) std::abort();
  }
  return 0;
}
