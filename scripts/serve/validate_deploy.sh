#!/usr/bin/env bash
# Validates the deployment examples (examples/production) on a machine without a container engine
# or a cluster, offline:
#   1. yamllint on every YAML file (examples/production/.yamllint.yaml);
#   2. kubernetes-validate --strict on the Kubernetes manifests, against the OpenAPI schemas that
#      package ships for Kubernetes 1.29 and 1.37 (unknown fields are errors);
#   3. check-jsonschema on docker-compose.yml with its vendored compose-spec schema;
#   4. tests/python/test_deploy_files.py: Dockerfile structure, ports/probes/flags/selectors across
#      the files, and (with a CLI that has `serve`, from KPT_CLI or build/) the images' and the
#      Deployment's exact command lines started on loopback with the SageMaker / Vertex AI routes.
# Nothing here builds an image or talks to a cluster; docs/deployment.md says what is not covered.
#
#   scripts/serve/validate_deploy.sh            # fails if a validator is missing
#   scripts/serve/validate_deploy.sh --install  # pip-installs the validators first
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
PROD=examples/production
K8S_VERSIONS=(1.29.0 1.37.0)

if [ "${1:-}" = "--install" ]; then
  $PY -m pip install -q --disable-pip-version-check yamllint kubernetes-validate check-jsonschema
elif [ -n "${1:-}" ]; then
  sed -n '2,16p' "$0"; exit 2
fi
for tool in yamllint kubernetes_validate check_jsonschema; do
  if ! $PY -c "import $tool" 2>/dev/null; then
    echo "validate_deploy: $tool is missing: pip install yamllint kubernetes-validate check-jsonschema (or --install)" >&2
    exit 2
  fi
done

echo "== yamllint"
$PY -m yamllint -s -c "$PROD/.yamllint.yaml" "$PROD"
echo "ok"

echo "== kubernetes-validate --strict (offline schemas)"
manifests=()
for f in "$PROD"/k8s/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")   # kustomize's file, not an API object
done
for v in "${K8S_VERSIONS[@]}"; do
  $PY -m kubernetes_validate --strict --quiet -k "$v" "${manifests[@]}"
  echo "ok: ${#manifests[@]} files against Kubernetes $v"
done

echo "== check-jsonschema: compose-spec (vendored schema)"
$PY -m check_jsonschema --builtin-schema vendor.compose-spec "$PROD/docker-compose.yml"

echo "== tests/python/test_deploy_files.py"
export KPT_CLI=${KPT_CLI:-$PWD/build/src/cli/kernelpytorch}
$PY -m pytest -q -rs tests/python/test_deploy_files.py
