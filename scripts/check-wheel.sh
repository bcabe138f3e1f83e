#!/usr/bin/env bash
# CI step (scripts/test.sh): builds the wheel with scripts/build-wheel.sh, installs it into a
# fresh virtual environment with pip (no index: only the wheel) and runs the installed mlreg:
# `--version`, `validate` on desired-state/, and `plan` against a throw-away MLflow server
# (scripts/mlflow-server.sh). Also checks the wheel installed the man pages and completions,
# and that the source distribution holds what a build from it needs (the sources, Cargo.lock,
# build.rs, the generated share/ files) and nothing of the machine that made it (no target/
# beyond those files, no virtual environment).
#
# Environment: MLREG_WHEEL_PROFILE (default here: `dev`, see scripts/build-wheel.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
fail() { echo "check-wheel: $*" >&2; exit 1; }

built="$(MLREG_WHEEL_PROFILE="${MLREG_WHEEL_PROFILE:-dev}" scripts/build-wheel.sh --sdist)"
wheel="$(sed -n 1p <<<"$built")"
sdist="$(sed -n 2p <<<"$built")"
[[ "$wheel" == *.whl && "$sdist" == *.tar.gz ]] || fail "build-wheel.sh --sdist printed: $built"
work="$(mktemp -d "${TMPDIR:-/tmp}/mlreg-wheel.XXXXXX")"
server=""
cleanup() {
  if [[ -n "$server" ]]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

listing="$(tar tzf "$sdist")"
base="$(basename "$sdist" .tar.gz)"
for file in Cargo.toml Cargo.lock build.rs pyproject.toml src/main.rs src/lib.rs \
  target/wheel-data/data/share/man/man1/mlreg.1 target/wheel-data/data/share/zsh/site-functions/_mlreg; do
  grep -qx "$base/$file" <<<"$listing" || fail "the sdist holds no $file"
done
if grep -E "^$base/(\.venv|target/(debug|release|wheels))" <<<"$listing" | head -1 | grep -q .; then
  fail "the sdist holds build output or a virtual environment"
fi
echo "check-wheel: $(basename "$sdist"): $(wc -l <<<"$listing") files, $(du -k "$sdist" | cut -f1) KiB" >&2

python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --no-index --disable-pip-version-check "$wheel"
mlreg="$work/venv/bin/mlreg"
[[ -x "$mlreg" ]] || fail "the wheel installed no bin/mlreg"
for file in share/man/man1/mlreg.1 share/man/man1/mlreg-plan.1 \
  share/bash-completion/completions/mlreg share/zsh/site-functions/_mlreg \
  share/fish/vendor_completions.d/mlreg.fish; do
  [[ -s "$work/venv/$file" ]] || fail "the wheel installed no $file"
done

version="$(grep -m1 '^version = ' Cargo.toml | cut -d'"' -f2)"
printed="$(env -u MLFLOW_TRACKING_URI "$mlreg" --version)"
[[ "$printed" =~ ^mlreg\ $version\ \(([0-9a-f]{12}(,\ dirty)?|commit\ unknown)\)$ ]] || fail "unexpected --version: $printed"
echo "check-wheel: $printed" >&2

"$mlreg" validate --dir desired-state >&2 || fail "validate desired-state/ failed"

# The installed binary against a real server. A fresh registry holds no versions, so plan a
# manifest that declares none: creating the model is the one pending change (exit 2).
mkdir -p "$work/desired"
cat >"$work/desired/wheel_check.yaml" <<'YAML'
apiVersion: mlreg/v1
kind: RegisteredModel
metadata:
  name: wheel_check
spec:
  description: planned by scripts/check-wheel.sh
YAML
MLREG_PARENT_PID=$$ scripts/mlflow-server.sh >"$work/server.out" &
server=$!
for _ in $(seq 1200); do
  grep -q '^MLFLOW_TRACKING_URI=' "$work/server.out" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || fail "scripts/mlflow-server.sh ended without a server"
  sleep 0.1
done
uri="$(sed -n 's/^MLFLOW_TRACKING_URI=//p' "$work/server.out")"
[[ -n "$uri" ]] || fail "no MLflow server after 120 s"
status=0
MLFLOW_TRACKING_URI="$uri" NO_COLOR=1 "$mlreg" plan --dir "$work/desired" --detailed-exitcode \
  >"$work/plan.txt" 2>&1 || status=$?
[[ "$status" == 2 ]] || { cat "$work/plan.txt" >&2; fail "plan exited $status, expected 2 (changes pending)"; }
grep -q wheel_check "$work/plan.txt" || { cat "$work/plan.txt" >&2; fail "the plan names no wheel_check"; }
echo "check-wheel: $(basename "$wheel") installs and runs: --version, validate, plan against $uri" >&2
