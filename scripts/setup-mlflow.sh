#!/usr/bin/env bash
# Installs the pinned MLflow (requirements-mlflow.txt) into the project-local virtual
# environment .venv, reusing it when it already holds exactly that pin.
# Usage: scripts/setup-mlflow.sh            (prints the venv's python on stdout)
#
# Environment: MLREG_MLFLOW_REQUIREMENTS picks another pin file (e.g. requirements-mlflow2.txt,
# the MLflow 2.x pass of scripts/test.sh), MLREG_VENV the venv it goes into. Each pin file needs
# its own venv: the stamp below makes a venv hold exactly one of them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MLREG_VENV:-$root/.venv}"
requirements="${MLREG_MLFLOW_REQUIREMENTS:-$root/requirements-mlflow.txt}"
stamp="$venv/.mlreg-requirements.sha256"
python="${PYTHON:-python3}"

wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ -x "$venv/bin/mlflow" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
  echo "$venv/bin/python"
  exit 0
fi

echo "setup-mlflow: installing $(grep -v '^#' "$requirements" | xargs) into $venv" >&2
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --upgrade pip >&2 || true
"$venv/bin/python" -m pip install --quiet -r "$requirements" >&2
echo "$wanted" > "$stamp"
"$venv/bin/mlflow" --version >&2
echo "$venv/bin/python"
