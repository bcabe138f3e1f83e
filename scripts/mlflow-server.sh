#!/usr/bin/env bash
# Starts a throw-away MLflow tracking server: a free loopback port, a SQLite backend and an
# artifact root in a fresh temporary directory. Once GET /health answers OK it prints
#   MLFLOW_TRACKING_URI=http://127.0.0.1:PORT
# on stdout and stays in the foreground. It stops the server and deletes the directory when
# it receives SIGTERM/SIGINT, or when the process that started it (its parent, or the pid in
# MLREG_PARENT_PID) goes away, so a test binary that exits never leaves a server behind.
#
# Environment: MLFLOW_PORT (default: a free port), MLFLOW_WORKERS (default 1),
# MLFLOW_SERVER_ARGS (extra arguments, e.g. "--app-name basic-auth"),
# MLREG_KEEP_DATA=1 keeps the temporary directory, MLFLOW_DATA_DIR uses a given directory.
# MLREG_VENV picks the venv the server runs from and MLREG_MLFLOW_REQUIREMENTS the pin it holds
# (scripts/setup-mlflow.sh); set both together, e.g. for the MLflow 2.x pass of scripts/test.sh:
#   MLREG_VENV=.venv-mlflow2 MLREG_MLFLOW_REQUIREMENTS=requirements-mlflow2.txt
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MLREG_VENV:-$root/.venv}"
[[ "$venv" == /* ]] || venv="$PWD/$venv"   # the script changes directory below
export MLREG_VENV="$venv"
"$root/scripts/setup-mlflow.sh" >/dev/null

parent="${MLREG_PARENT_PID:-$PPID}"
port="${MLFLOW_PORT:-$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
if [[ -n "${MLFLOW_DATA_DIR:-}" ]]; then
  data="$MLFLOW_DATA_DIR"; mkdir -p "$data"; own_data=0
else
  data="$(mktemp -d "${TMPDIR:-/tmp}/mlreg-mlflow.XXXXXX")"; own_data=1
fi
log="$data/server.log"

cd "$data"
# MLflow 3's job runner (seven huey consumers polling the database) has nothing to do with
# the registry and costs about half a CPU while idle; keep it off unless asked for.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"
# shellcheck disable=SC2086
# setsid: the server, its uvicorn workers and its job runners form one process group that
# cleanup can stop as a whole.
setsid "$venv/bin/mlflow" server \
  --backend-store-uri "sqlite:///$data/mlflow.db" \
  --default-artifact-root "$data/artifacts" \
  --host 127.0.0.1 --port "$port" \
  --workers "${MLFLOW_WORKERS:-1}" \
  ${MLFLOW_SERVER_ARGS:-} >"$log" 2>&1 &
server=$!

cleanup() {
  trap - EXIT INT TERM
  kill -TERM -- "-$server" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 -- "-$server" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$server" 2>/dev/null || true
  if [[ "$own_data" == 1 && -z "${MLREG_KEEP_DATA:-}" ]]; then rm -rf "$data"; fi
}
trap cleanup EXIT
trap 'exit 0' INT TERM

for _ in $(seq 600); do
  if ! kill -0 "$server" 2>/dev/null; then
    echo "mlflow-server: the server exited during startup; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  if [[ "$(curl -fsS "http://127.0.0.1:$port/health" 2>/dev/null || true)" == "OK" ]]; then
    echo "MLFLOW_TRACKING_URI=http://127.0.0.1:$port"
    echo "MLFLOW_DATA_DIR=$data"
    break
  fi
  sleep 0.2
done
if [[ "$(curl -fsS "http://127.0.0.1:$port/health" 2>/dev/null || true)" != "OK" ]]; then
  echo "mlflow-server: no answer on /health after 120 s; its log:" >&2
  cat "$log" >&2
  exit 1
fi

while kill -0 "$server" 2>/dev/null && kill -0 "$parent" 2>/dev/null; do
  sleep 0.5 &
  wait $! || true
done
