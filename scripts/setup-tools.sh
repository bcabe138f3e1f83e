#!/usr/bin/env bash
# Installs the pinned build and check tools (requirements-tools.txt: maturin,
# kubernetes-validate) into the project-local virtual environment .venv-tools, reusing it when
# it already holds exactly those pins. The same pattern as scripts/setup-mlflow.sh.
# Usage: scripts/setup-tools.sh            (prints the venv's bin directory on stdout)
# Environment: MLREG_TOOLS_VENV (default .venv-tools), PYTHON (default python3).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MLREG_TOOLS_VENV:-$root/.venv-tools}"
requirements="$root/requirements-tools.txt"
stamp="$venv/.mlreg-requirements.sha256"
python="${PYTHON:-python3}"

wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ -x "$venv/bin/maturin" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
  echo "$venv/bin"
  exit 0
fi

echo "setup-tools: installing $(grep -v '^#' "$requirements" | xargs) into $venv" >&2
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --upgrade pip >&2 || true
"$venv/bin/python" -m pip install --quiet -r "$requirements" >&2
echo "$wanted" > "$stamp"
echo "$venv/bin"
