#!/usr/bin/env bash
# The GPU driver of the CUDA backend (issue 5). Two halves, one script:
#
#   scripts/gpu/run_gpu.sh stage   HERE (no GPU needed): builds build-cuda/ and copies the stripped
#                                  binaries plus the shared libraries the GPU image lacks into
#                                  build-cuda/gpu_bin/ (the folder to carry to the GPU machine).
#   scripts/gpu/run_gpu.sh run     ON THE GPU MACHINE, from the repo root: (a) the GPU test suite,
#                                  (b) the benchmark, ours vs PyTorch on the same random-weight
#                                  models, (d) `kernelpytorch benchmark --suite popular` on CUDA,
#                                  (e) `kernelpytorch serve` under scripts/serve/load_test.py (when
#                                  both exist), (c) a short table last. Logs and JSON go to $OUT.
#                                  KPT_GPU_PHASES picks phases (default: all of
#                                  "tests bench profile peers compiled suite serve"; also "cpu":
#                                  the CPU backend's tests on the GPU host's CPU, staged with
#                                  KPT_STAGE_CPU=1, which leaves out the CLI).
#                                  "cpubench": the CPU backend fp32 vs bf16 on this host's CPU.
#                                  KPT_BENCH_SPECS="model mode batch seq;..." narrows phase bench,
#                                  KPT_TEST_FILTER a gtest filter for phase tests.
#
# With the device tool:  run(command="scripts/gpu/run_gpu.sh run", carry=["build-cuda/gpu_bin"])
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${KPT_CUDA_BUILD:-$ROOT/build-cuda}
BIN=$BUILD/gpu_bin

stage() {
  set -e
  # The H200 needs only sm_90a; the default also builds sm_80, which would push the carried
  # folder past the 64 MiB a device call can take.
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DKPT_ENABLE_CUDA=ON -DKPT_WERROR=ON \
    -DKPT_CUDA_GENCODE="${KPT_CUDA_GENCODE:--gencode=arch=compute_90a,code=sm_90a}" \
    -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache >/dev/null
  # KPT_STAGE_CPU=1 adds kpt_cpu_tests (phase cpu) and leaves out the CLI (phases suite, serve), so
  # the folder plus the tracked files stay under the 64 MiB a device call carries.
  local exes="tests/cuda/kpt_cuda_tests tests/cuda/kpt_cuda_bench src/cli/kernelpytorch"
  [ "${KPT_STAGE_CPU:-0}" = 1 ] && exes="tests/cuda/kpt_cuda_tests tests/cpp/cpu/kpt_cpu_tests tests/cuda/kpt_cuda_bench"
  # shellcheck disable=SC2086
  ninja -C "$BUILD" -j2 $(for e in $exes; do basename "$e"; done)
  rm -rf "$BIN" && mkdir -p "$BIN"
  for exe in $exes; do
    strip -o "$BIN/$(basename $exe)" "$BUILD/$exe"
  done
  # Libraries of this machine's image that the GPU image does not have (cuBLASLt, fmt, sqlite,
  # pcre2, openblas, gomp, ssl and zlib are there; cpp-httplib and brotli are for serve). Stripped: libdnnl alone is 40 MB of a 64 MiB carry.
  for lib in $(ldd "$BIN"/kpt_* "$BIN"/kernelpytorch 2>/dev/null | awk '/=> \//{print $3}' | sort -u); do
    case "$(basename "$lib")" in
      libutf8proc.so.*|libdnnl.so.*|libOpenCL.so.*|libcpp-httplib.so.*|libbrotli*.so.*) strip --strip-unneeded -o "$BIN/$(basename "$lib")" "$lib" ;;
    esac
  done
  # A 32,000-token SentencePiece-style BPE tokenizer (TinyLlama's vocabulary size) for the serve
  # phase: a random-weight llama-1b needs some tokenizer.json to take text prompts.
  tok=${KPT_SERVE_TOKENIZER:-$ROOT/../shared/data/tokenizers/sp-bpe-32k}
  if [ -f "$tok/tokenizer.json" ]; then
    mkdir -p "$BIN/serve_tokenizer" && cp "$tok"/tokenizer*.json "$BIN/serve_tokenizer/"
  fi
  du -sh "$BIN"; ls -la "$BIN"
  local total
  total=$(( $(du -sb "$BIN" | cut -f1) + $(cd "$ROOT" && git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1) ))
  echo "carried folder + tracked files: $(( total / 1048576 )) MiB (a device call takes 64 MiB)"
  [ "$total" -le $(( 64 * 1048576 )) ] || { echo "too large to carry" >&2; return 1; }
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

  phases=" ${KPT_GPU_PHASES:-tests bench profile peers compiled suite serve} "
  has() { [[ "$phases" == *" $1 "* ]]; }
  tests_rc=0
  : > "$OUT/parity.txt"
  if has tests; then
    echo "=== (a) GPU tests ==="
    timeout 240 "$BIN/kpt_cuda_tests" --gtest_brief=1 --gtest_filter="${KPT_TEST_FILTER:-*}" 2>&1 | tee "$OUT/tests.log" | grep -v "^\[ parity"
    tests_rc=${PIPESTATUS[0]}
    grep "^\[ parity" "$OUT/tests.log" | sort > "$OUT/parity.txt"
    # Failures again, alone and in full (the brief log above names them only).
    failed=$(grep "^\[  FAILED  \] [A-Za-z]" "$OUT/tests.log" | awk '{print $4}' | sed 's/,$//' | sort -u | paste -sd:)
    if [ -n "$failed" ]; then
      echo "=== failed tests, in full ==="
      timeout 120 "$BIN/kpt_cuda_tests" --gtest_filter="$failed" 2>&1 | grep -v "^\[ parity" | tail -60
    fi
  fi

  # The CPU backend's tests on the GPU host's CPU (another ISA than the development machine's:
  # AVX-512 / AVX512_BF16 / AMX paths run only where the CPU has them). Not in the default phases.
  if has cpu && [ -x "$BIN/kpt_cpu_tests" ]; then
    echo "=== (f) CPU backend tests on this host's CPU ==="
    lscpu | grep -E "Model name|^CPU\(s\)" | tee "$OUT/cpu.txt"
    grep -o -w -E "avx512f|avx512_bf16|amx_bf16|avx512_vnni|avx_vnni" /proc/cpuinfo | sort -u | tr '\n' ' ' | tee -a "$OUT/cpu.txt"; echo
    KPT_CPU_BF16=1 timeout 240 "$BIN/kpt_cpu_tests" --gtest_brief=1 > "$OUT/cpu_tests.log" 2>&1
    echo "kpt_cpu_tests exit code: $?"; grep -E "tests? ran|PASSED|FAILED|bf16" "$OUT/cpu_tests.log" | tail -12
  fi

  echo "=== (b) benchmark ==="
  MODELS=/tmp/kpt_bench_models
  results=$OUT/results.jsonl
  : > "$results"
  : > "$OUT/graph_timing.txt"
  timeout 200 python3 "$ROOT/scripts/gpu/bench_torch.py" make "$MODELS" || echo "model creation failed"
  b="$BIN/kpt_cuda_bench"
  if has bench; then
  specs=${KPT_BENCH_SPECS:-"bert-base encoder 1 128;bert-base encoder 32 128;gpt2-medium prefill 1 512;gpt2-medium decode 1 32;gpt2-medium decode 8 32;llama-1b prefill 1 512;llama-1b decode 1 32;llama-1b decode 8 32"}
  IFS=';' read -ra spec_list <<< "$specs"
  for spec in "${spec_list[@]}"; do
    set -- $spec
    for level in ${KPT_BENCH_LEVELS:-balanced reference}; do
      # fp32 (reference) only where it is cheap: it is the parity oracle, not the fast path.
      if [ "$level" = reference ] && [ "$1" = llama-1b ]; then continue; fi
      KPT_CUDA_GRAPH_TIMING=1 timeout 60 "$b" "$MODELS/$1" "$2" "$3" "$4" 128 "$level" 20 2>> "$OUT/graph_timing.txt" \
        | sed "s|$MODELS/||" >> "$results" \
        || echo "ours failed: $spec $level"
    done
  done
  fi
  # Where the time goes: eager launches with an event between nodes (KPT_CUDA_PROFILE=1).
  : > "$OUT/profile.txt"
  if has profile; then
    for spec in "llama-1b decode 1 32" "llama-1b decode 8 32" "bert-base encoder 1 128" "bert-base encoder 32 128" \
                "llama-1b prefill 1 512"; do
      set -- $spec
      KPT_CUDA_PROFILE=1 timeout 60 "$b" "$MODELS/$1" "$2" "$3" "$4" 32 balanced 5 >> "$OUT/profile.txt" 2>&1 \
        || echo "profile failed: $spec"
    done
  fi
  # The CPU backend on this host's CPU (AMX / AVX512_BF16 where it has them): conservative (fp32)
  # vs balanced with bf16 GEMMs (KPT_CPU_BF16=1) vs PyTorch eager fp32, interleaved, BERT-base.
  # Needs the CLI (default staging). Not in the default phases.
  if has cpubench && [ -x "$BIN/kernelpytorch" ]; then
    echo "=== (g) CPU backend, this host's CPU: fp32 vs bf16 ==="
    for b in 1 8; do
      KPT_CPU_BF16=1 timeout 200 "$BIN/kernelpytorch" benchmark "$MODELS/bert-base" --device cpu \
        --level conservative,balanced --threads "$(nproc)" -b "$b" -s 128 -r 10 --no-history --no-progress \
        --peers pytorch 2>&1 | tee -a "$OUT/cpu_bench.txt" | tail -12
    done
  fi

  if has peers; then
    timeout 240 python3 "$ROOT/scripts/gpu/bench_torch.py" peers "$MODELS" >> "$results" 2> "$OUT/peers.err" \
      || { echo "peers failed or timed out"; tail -5 "$OUT/peers.err"; }
  fi

  # transformers generate() with a static cache + torch.compile(reduce-overhead): slow to warm up
  # (compilation per model and batch), so a phase of its own.
  if has compiled; then
    timeout 420 python3 "$ROOT/scripts/gpu/bench_torch.py" compiled_decode "$MODELS" >> "$results" 2> "$OUT/compiled.err" \
      || { echo "compiled decode peers failed or timed out"; tail -5 "$OUT/compiled.err"; }
  fi

  if has suite; then
    echo "=== (d) kernelpytorch benchmark --suite popular --device cuda --quick ==="
    # Random weights of the official configs (benchmarks/configs); reference (fp32) and balanced.
    timeout 300 "$BIN/kernelpytorch" benchmark --suite popular --device cuda --quick --level reference,balanced \
      --no-history --no-progress -o "$OUT/h200-suite-popular.json" > "$OUT/suite.log" 2>&1 \
      || echo "suite failed (exit $?)"
    tail -30 "$OUT/suite.log"
  fi

  if has serve && [ -f "$ROOT/scripts/serve/load_test.py" ] && "$BIN/kernelpytorch" serve --help > /dev/null 2>&1 \
     && [ -f "$BIN/serve_tokenizer/tokenizer.json" ] && [ -d "$MODELS/llama-1b" ]; then
    echo "=== (e) kernelpytorch serve (random-weight llama-1b, cuda) under load_test.py ==="
    sdir=/tmp/kpt_serve_llama
    mkdir -p "$sdir" && ln -sf "$MODELS/llama-1b"/* "$sdir/" && cp "$BIN/serve_tokenizer"/* "$sdir/"
    # KPT_SERVE_LEVELS (default: reference balanced) x KPT_SERVE_CONCURRENCY (default: 8).
    for slevel in ${KPT_SERVE_LEVELS:-reference balanced}; do
      "$BIN/kernelpytorch" serve "$sdir" --device cuda --port 8311 --level "$slevel" > "$OUT/serve_$slevel.log" 2>&1 &
      spid=$!
      for _ in $(seq 1 120); do
        python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8311/ready', timeout=2)" 2> /dev/null && break
        kill -0 "$spid" 2> /dev/null || break
        sleep 1
      done
      for conc in ${KPT_SERVE_CONCURRENCY:-8}; do
        echo "--- serve level $slevel, concurrency $conc"
        timeout 180 python3 "$ROOT/scripts/serve/load_test.py" --url http://127.0.0.1:8311 --requests 64 \
          --concurrency "$conc" --max-tokens 64 --server-pid "$spid" --json "$OUT/serve_gpu_${slevel}_c$conc.json" 2>&1 \
          | tail -25 || echo "load test failed"
      done
      kill "$spid" 2> /dev/null; wait "$spid" 2> /dev/null
      tail -3 "$OUT/serve_$slevel.log"
    done
  fi

  echo "=== (c) summary ==="
  sed 's/^\[ parity   \] //' "$OUT/parity.txt" | grep -E "single|graph|plans"
  grep -A14 "kpt cuda profile" "$OUT/profile.txt"
  grep "kpt cuda graph" "$OUT/graph_timing.txt" | sort | uniq -c | sort -rn | head -20
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
