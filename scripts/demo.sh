#!/usr/bin/env bash
# The end-to-end demo on an embedded default: a local MLflow on SQLite (temporary), seeded
# with versions for the example models, then validate → versions → plan → reconcile → plan.
# Usage: scripts/demo.sh          (MLREG_DEMO_KEEP=1 keeps the server running at the end)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Bold headings only on a terminal (and not under NO_COLOR): a CI log keeps no escape codes.
if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then
  say() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; }
else
  say() { printf '\n$ %s\n' "$*" >&2; }
fi

python="$(scripts/setup-mlflow.sh)"
cargo build --release --quiet
mlreg="$root/target/release/mlreg"

work="$(mktemp -d)"
server_out="$work/server.out"
scripts/mlflow-server.sh >"$server_out" &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 600); do
  grep -q '^MLFLOW_TRACKING_URI=' "$server_out" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { echo "demo: the MLflow server did not start" >&2; exit 1; }
  sleep 0.2
done
export MLFLOW_TRACKING_URI="$(sed -n 's/^MLFLOW_TRACKING_URI=//p' "$server_out")"
echo "demo: MLflow at $MLFLOW_TRACKING_URI" >&2

say "seed the registry (what training pipelines and people left behind)"
"$python" scripts/seed_demo.py

say "mlreg validate"
"$mlreg" validate

say "mlreg versions bert_fake_review_detector"
"$mlreg" versions bert_fake_review_detector

say "mlreg plan"
"$mlreg" plan

say "mlreg reconcile"
"$mlreg" reconcile

say "mlreg plan --detailed-exitcode   # 0: in sync"
"$mlreg" plan --detailed-exitcode

say "mlreg versions bert_fake_review_detector"
"$mlreg" versions bert_fake_review_detector

say "mlreg info bert_fake_review_detector"
"$mlreg" info bert_fake_review_detector

if [[ -n "${MLREG_DEMO_KEEP:-}" ]]; then
  echo "demo: server kept at $MLFLOW_TRACKING_URI; Ctrl-C to stop" >&2
  wait "$server"
fi
