#!/usr/bin/env bash
# Configures and builds KernelPyTorch into build/ (Release, Ninja, ccache). Incremental: a second
# run rebuilds only what changed. Extra arguments go to CMake, e.g. -DKPT_ENABLE_CUDA=OFF.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${KPT_BUILD_DIR:-build}
jobs=${KPT_JOBS:-$(nproc)}
werror=OFF
if [ "${CI:-}" = "true" ]; then werror=ON; fi
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
# Relative paths in compile commands let clones in other folders share the cache.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKPT_WERROR=$werror "$@" >/dev/null
ninja -C "$BUILD_DIR" -j "$jobs"
echo "build: $BUILD_DIR/src/cli/kernelpytorch"
