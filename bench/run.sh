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
#   bench/run.sh --preset shared       scale: 5000 x 20 (100 000 versions), 10 of them managed
#                                      (bench/scale.py -> docs/benchmarks-scale.md)
#   bench/run.sh --preset shared --quick   the same at 500 x 20, a smoke run; does not touch docs/
#   bench/run.sh --preset events       webhook heal latency (20 trials) and notification cost
#                                      (bench/events.py -> docs/benchmarks-events.md)
#   bench/run.sh --preset gates        plan time with gates on 100 models, 10 promoting, vs without
#                                      (bench/gates.py -> docs/benchmarks-gates.md)
# Other options go to the script: bench/bench.py takes --workers W (MLflow server workers,
# default 4), --reps R, --edits E, --growth 2000,5000,..., --raw-limit N, --raw-scan-limit N,
# --out FILE; bench/scale.py (--preset shared) takes --models, --managed, --growth, --reps.
# Every figure also goes to target/bench/results-<time>.json.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

command="bench/run.sh${*:+ $*}"
# Two passes over the arguments: the preset picks the script, --quick its smoke sizes.
script="bench.py"; preset="default"; quick=0
for ((i = 1; i <= $#; i++)); do
  case "${!i}" in
    --quick) quick=1 ;;
    --preset) j=$((i + 1)); preset="${!j:-}" ;;
  esac
done
case "$preset" in
  default) args=(); out="docs/benchmarks.md" ;;
  large) args=(--models 500 --versions 40 --growth 20000,40000,80000
               --baseline-apply-models 50 --baseline-tag-models 5 --raw-limit 4000)
         out="docs/benchmarks.md" ;;
  shared) script="scale.py"; args=(); out="docs/benchmarks-scale.md" ;;
  events) script="events.py"; args=(); out="docs/benchmarks-events.md" ;;
  gates) script="gates.py"; args=(); out="docs/benchmarks-gates.md" ;;
  *) echo "bench/run.sh: unknown preset '$preset' (default, large, shared, events, gates)" >&2; exit 2 ;;
esac
if [[ "$quick" == 1 ]]; then
  out=""
  if [[ "$script" == scale.py ]]; then
    args=(--models 500 --growth 2000,10000 --reps 3 --resyncs 2)
  elif [[ "$script" == events.py ]]; then
    args=(--trials 5 --reps 3)
  elif [[ "$script" == gates.py ]]; then
    args=(--models 20 --promoting 5 --reps 3)
  else
    args=(--models 20 --versions 10 --reps 3 --edits 3 --growth 200,1000,2000
          --baseline-tag-models 2 --raw-limit 300 --raw-scan-limit 300 --raw-single-limit 50)
  fi
fi
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) ;;
    --preset) shift ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
"$root/.venv/bin/python" "$root/bench/$script" --json "$json" --command "$command" "${args[@]}"
echo "bench: done in $((SECONDS - started)) s after the build; figures in $json${out:+, report in $out}" >&2
