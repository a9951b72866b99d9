#!/usr/bin/env bash
# Rewrites the instruction-count baselines of the CI performance gate for this machine's ISA
# (benchmarks/baselines/callgrind.json keeps the other ISAs' entries). Run it after an intended
# change to a hot kernel, check the printed counts, and commit the file with the change.
#   scripts/perf/update_baselines.sh [BUILD_DIR]      (default: build)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-${KPT_BUILD_DIR:-build}}
ninja -C "$build" kpt_perf_driver >/dev/null
python3 scripts/perf/gate.py --build "$build" --callgrind-only --update
git --no-pager diff --stat -- benchmarks/baselines/callgrind.json || true
