#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS (default 60).
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is needed (apt-get install clang)" >&2; exit 2; }
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DKPT_BUILD_FUZZERS=ON -DKPT_BUILD_TESTS=OFF -DKPT_ENABLE_CUDA=OFF \
  -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined" >/dev/null
ninja -C build-fuzz fuzz_safetensors_header fuzz_hf_config
mkdir -p build-fuzz/corpus/safetensors build-fuzz/corpus/config
# Seeds: real files from the fixtures.
for f in tests/fixtures/models/*/model*.safetensors; do cp "$f" build-fuzz/corpus/safetensors/ 2>/dev/null || true; done
for d in tests/fixtures/models/*/; do cp "$d/config.json" "build-fuzz/corpus/config/$(basename "$d").json"; done
for target in safetensors_header:safetensors hf_config:config; do
  name=${target%%:*}; corpus=${target##*:}
  echo "fuzz.sh: fuzz_$name for ${seconds}s"
  ./build-fuzz/tests/fuzz/fuzz_$name -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 \
    build-fuzz/corpus/$corpus 2>&1 | tail -n 12
done
