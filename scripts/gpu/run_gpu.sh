#!/usr/bin/env bash
# The GPU driver of the CUDA backend (issue 5). Two halves, one script:
#
#   scripts/gpu/run_gpu.sh stage   HERE (no GPU needed): builds build-cuda/ and copies the stripped
#                                  binaries plus the shared libraries the GPU image lacks into
#                                  build-cuda/gpu_bin/ (the folder to carry to the GPU machine).
#   scripts/gpu/run_gpu.sh run     ON THE GPU MACHINE, from the repo root: (a) the GPU test suite,
#                                  (b) the benchmark, ours vs PyTorch on the same random-weight
#                                  models, (c) a short table last. Logs and JSON go to $OUT.
#
# With the device tool:  run(command="scripts/gpu/run_gpu.sh run", carry=["build-cuda/gpu_bin"])
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${KPT_CUDA_BUILD:-$ROOT/build-cuda}
BIN=$BUILD/gpu_bin

stage() {
  set -e
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DKPT_ENABLE_CUDA=ON -DKPT_WERROR=ON \
    -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache >/dev/null
  ninja -C "$BUILD" -j2 kpt_cuda_tests kpt_cuda_bench
  rm -rf "$BIN" && mkdir -p "$BIN"
  for exe in tests/cuda/kpt_cuda_tests tests/cuda/kpt_cuda_bench; do
    strip -o "$BIN/$(basename $exe)" "$BUILD/$exe"
  done
  # Libraries of this machine's image that the GPU image does not have (cuBLASLt is there).
  for lib in $(ldd "$BIN/kpt_cuda_tests" | awk '/=> \//{print $3}'); do
    case "$(basename "$lib")" in
      libutf8proc.so.*|libdnnl.so.*|libOpenCL.so.*) cp -L "$lib" "$BIN/" ;;
    esac
  done
  du -sh "$BIN"; ls -la "$BIN"
}

run() {
  OUT=${OUT:-/tmp/kpt_gpu_out}
  mkdir -p "$OUT"
  # The tests find the fixtures through the source path compiled in (/work/main).
  if [ ! -e /work/main/tests/fixtures ] && [ "$ROOT" != /work/main ]; then
    mkdir -p /work && ln -sfn "$ROOT" /work/main
  fi
  cublas_dir=$(python3 - <<'PY' 2>/dev/null
import glob, os, nvidia
for base in nvidia.__path__:
    for hit in glob.glob(os.path.join(base, "**", "libcublasLt.so*"), recursive=True):
        print(os.path.dirname(hit)); raise SystemExit
PY
)
  export LD_LIBRARY_PATH="$BIN:/usr/local/cuda/lib64:${cublas_dir}:${LD_LIBRARY_PATH:-}"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.txt"
  ldd "$BIN/kpt_cuda_tests" | grep "not found" && echo "missing libraries above"

  echo "=== (a) GPU tests ==="
  timeout 180 "$BIN/kpt_cuda_tests" --gtest_brief=1 2>&1 | tee "$OUT/tests.log" | grep -v "^\[ parity"
  tests_rc=${PIPESTATUS[0]}
  grep "^\[ parity" "$OUT/tests.log" | sort > "$OUT/parity.txt"

  echo "=== (b) benchmark ==="
  MODELS=/tmp/kpt_bench_models
  results=$OUT/results.jsonl
  : > "$results"
  timeout 200 python3 "$ROOT/scripts/gpu/bench_torch.py" make "$MODELS" || echo "model creation failed"
  b="$BIN/kpt_cuda_bench"
  for spec in "bert-base encoder 1 128" "bert-base encoder 32 128" \
              "gpt2-medium prefill 1 512" "gpt2-medium decode 1 32" "gpt2-medium decode 8 32" \
              "llama-1b prefill 1 512" "llama-1b decode 1 32" "llama-1b decode 8 32"; do
    set -- $spec
    for level in ${KPT_BENCH_LEVELS:-balanced reference}; do
      # fp32 (reference) only where it is cheap: it is the parity oracle, not the fast path.
      if [ "$level" = reference ] && [ "$1" = llama-1b ]; then continue; fi
      timeout 60 "$b" "$MODELS/$1" "$2" "$3" "$4" 128 "$level" 20 | sed "s|$MODELS/||" >> "$results" \
        || echo "ours failed: $spec $level"
    done
  done
  # Where the time goes: eager launches with an event between nodes (KPT_CUDA_PROFILE=1).
  : > "$OUT/profile.txt"
  for spec in "llama-1b decode 1 32" "bert-base encoder 32 128" "llama-1b prefill 1 512"; do
    set -- $spec
    KPT_CUDA_PROFILE=1 timeout 60 "$b" "$MODELS/$1" "$2" "$3" "$4" 32 balanced 5 >> "$OUT/profile.txt" 2>&1 \
      || echo "profile failed: $spec"
  done
  timeout 240 python3 "$ROOT/scripts/gpu/bench_torch.py" peers "$MODELS" >> "$results" 2> "$OUT/peers.err" \
    || { echo "peers failed or timed out"; tail -5 "$OUT/peers.err"; }

  echo "=== (c) summary ==="
  sed 's/^\[ parity   \] //' "$OUT/parity.txt" | grep -E "single|graph|plans"
  grep -A9 "kpt cuda profile" "$OUT/profile.txt"
  grep -E "tests? ran|PASSED|FAILED" "$OUT/tests.log" | tail -12
  python3 "$ROOT/scripts/gpu/bench_torch.py" table "$results" | tee "$OUT/table.txt"
  echo "tests exit code: $tests_rc"
  return "$tests_rc"
}

case "${1:-}" in
  stage) stage ;;
  run) run ;;
  *) echo "usage: $0 {stage|run}" >&2; exit 2 ;;
esac
