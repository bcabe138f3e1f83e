#!/usr/bin/env bash
# CI step (scripts/test.sh): validates every manifest under examples/k8s against the
# Kubernetes OpenAPI schemas, offline and strict (unknown fields fail), with the pinned
# kubernetes-validate (requirements-tools.txt, in .venv-tools). Any warning fails too, except
# the one for the ServiceMonitor: a CRD, whose schema kubernetes-validate does not carry.
# Environment: MLREG_K8S_VERSIONS, the Kubernetes versions to check against (default 1.33.0
# and 1.37.0, the newest kubernetes-validate 1.37.0 carries).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tools="$(scripts/setup-tools.sh)"
mapfile -t files < <(find examples/k8s -name '*.yaml' -o -name '*.yml' | sort)
[[ ${#files[@]} -gt 0 ]] || { echo "check-k8s: no manifests under examples/k8s" >&2; exit 1; }
status=0
for version in ${MLREG_K8S_VERSIONS:-1.33.0 1.37.0}; do
  report="$("$tools/kubernetes-validate" --strict -k "$version" "${files[@]}" 2>&1)" || status=1
  echo "$report" >&2
  if grep -v "Couldn't find schema for kind ServiceMonitor with api version monitoring.coreos.com/v1" <<<"$report" \
      | grep -qE '^(WARN|ERROR)'; then
    status=1
  fi
done
if [[ "$status" != 0 ]]; then
  echo "check-k8s: examples/k8s does not match the Kubernetes schemas" >&2
  exit 1
fi
echo "check-k8s: ${#files[@]} files under examples/k8s pass against Kubernetes ${MLREG_K8S_VERSIONS:-1.33.0 1.37.0} (the ServiceMonitor unchecked: a CRD)" >&2
