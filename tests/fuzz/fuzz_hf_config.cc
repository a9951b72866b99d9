// libFuzzer: config.json text through the config parser and every family's config parsing
// (without weights, builders stop at the schema check) must end in a kpt::Error, not a crash.
#include <cstdint>
#include <string_view>

#include "io/hf_config.h"
#include "io/safetensors.h"
#include "models/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const kpt::io::WeightStore kEmpty = kpt::io::WeightStore::from_files({});
  try {
    auto cfg = kpt::io::HfConfig::parse(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.json");
    kpt::models::build_model(cfg, kEmpty);
  } catch (const kpt::Error&) {
  }
  return 0;
}
