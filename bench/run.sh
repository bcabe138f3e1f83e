#!/usr/bin/env bash
# The benchmark: mlreg against the Python script teams use today and against the MLflow
# server's own limits. Builds mlreg in release mode, starts real MLflow servers, seeds them,
# measures, prints a table and writes docs/benchmarks.md. Not a test: it asserts nothing.
#
# Usage:
#   bench/run.sh                       100 models x 20 versions (about 10 minutes plus the build)
#   bench/run.sh --preset large        500 x 40 (the script's apply is sampled and extrapolated)
#   bench/run.sh --models N --versions M
#   bench/run.sh --quick               20 x 10, a smoke run (2-3 minutes); does not touch docs/
# Options passed on to bench/bench.py: --workers W (MLflow server workers, default 4),
# --reps R, --edits E, --growth 2000,5000,..., --raw-limit N, --raw-scan-limit N, --out FILE.
# Every figure also goes to target/bench/results-<time>.json.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

command="bench/run.sh${*:+ $*}"
args=()
out="docs/benchmarks.md"
quick=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick)
      quick=1
      args+=(--models 20 --versions 10 --reps 3 --edits 3 --growth 200,1000,2000
             --baseline-tag-models 2 --raw-limit 300 --raw-scan-limit 300 --raw-single-limit 50)
      out="" ;;
    --preset)
      case "${2:-}" in
        default) ;;
        large) args+=(--models 500 --versions 40 --growth 20000,40000,80000
                      --baseline-apply-models 50 --baseline-tag-models 5 --raw-limit 4000) ;;
        *) echo "bench/run.sh: unknown preset '${2:-}' (default, large)" >&2; exit 2 ;;
      esac
      shift ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$1") ;;
  esac
  shift
done

for tool in curl /usr/bin/time; do
  if ! command -v "$tool" >/dev/null; then
    echo "bench/run.sh: $tool is missing (apt-get install curl time)" >&2
    exit 1
  fi
done

echo "bench: building mlreg (release)" >&2
cargo build --release --quiet --bin mlreg
echo "bench: MLflow venv: $(scripts/setup-mlflow.sh)" >&2

json="target/bench/results-$(date +%Y%m%d-%H%M%S).json"
if [[ -n "$out" ]]; then args+=(--out "$out"); fi
started=$SECONDS
"$root/.venv/bin/python" "$root/bench/bench.py" --json "$json" --command "$command" "${args[@]}"
echo "bench: done in $((SECONDS - started)) s after the build; figures in $json${out:+, report in $out}" >&2
