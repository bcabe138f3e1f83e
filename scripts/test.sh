#!/usr/bin/env bash
# The project's test command (README, CI): installs the pinned MLflow into .venv and Chromium
# (Debian's package, for the status page's test) if needed, then checks formatting, lints, the
# forbidden-pattern list, unused dependencies and the API docs, and runs every test — unit tests and the integration tests, which start their own
# MLflow server. Then the distribution checks: the registry-facing integration tests again
# against MLflow 2.x (the compatibility matrix), the wheel built, installed and run, and the
# Kubernetes example validated against the Kubernetes schemas.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Each step's wall time goes to stderr when the next one starts (and at the end), to keep an
# eye on CI's budget.
started=$SECONDS; current=""
step() {
  if [[ -n "$current" ]]; then printf '<== %ss: %s\n' "$((SECONDS - started))" "$current" >&2; fi
  started=$SECONDS; current="$*"
  printf '\n==> %s\n' "$*" >&2
}
trap 'status=$?; if [[ $status == 0 && -n "$current" ]]; then printf "<== %ss: %s\n" "$((SECONDS - started))" "$current" >&2; fi' EXIT

step "MLflow (pinned in requirements-mlflow.txt) into .venv"
scripts/setup-mlflow.sh >/dev/null

step "Chromium (for the status page's test) when /usr/bin/chromium is missing"
scripts/setup-chromium.sh >/dev/null

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --all-targets -- -D warnings

step "forbidden patterns"
scripts/forbid.sh

step "unused dependencies"
scripts/unused-deps.sh

# The crate's own docs only (`--no-deps`): the dependencies' metadata comes from the clippy
# step's build, so this takes seconds. Warnings (a broken intra-doc link) fail the run.
step "cargo doc --no-deps (rustdoc warnings are errors)"
RUSTDOCFLAGS="${RUSTDOCFLAGS:-} -D warnings" cargo doc --locked --no-deps

step "cargo test"
cargo test --locked --all-targets -- "$@"

# The compatibility matrix: the pass above ran everything on the newest pin (MLflow 3,
# requirements-mlflow.txt); this one runs the modules that talk to the registry on the oldest
# line CI supports (MLflow 2.x, requirements-mlflow2.txt, its own venv), sharing one server
# (the test binary's). The server's venv follows MLREG_VENV and MLREG_MLFLOW_REQUIREMENTS
# (scripts/mlflow-server.sh -> scripts/setup-mlflow.sh). Left out by selection:
# - every other module: serving (logged models, `models:/m-...`, exist from MLflow 3 on) and
#   the offline or fault-injection tests, which do not depend on the server's version;
# - registry::snapshots_succeed_while_versions_are_registered_and_aliased_nonstop: it asserts
#   that a read raced a writer, which needs a server answering two requests at once. MLflow 2
#   serves through gunicorn's sync worker, one request at a time with MLFLOW_WORKERS=1, so the
#   race it tests cannot happen there (with two workers it passes, at twice the time).
step "cargo test: registry, reconcile, lifecycle, watch against MLflow 2.x (requirements-mlflow2.txt)"
mlflow2_env=(MLREG_VENV="$PWD/.venv-mlflow2" MLREG_MLFLOW_REQUIREMENTS="$PWD/requirements-mlflow2.txt")
env "${mlflow2_env[@]}" scripts/setup-mlflow.sh >/dev/null
env "${mlflow2_env[@]}" cargo test --locked --test it -- \
  registry:: reconcile:: lifecycle:: watch:: \
  --skip registry::snapshots_succeed_while_versions_are_registered_and_aliased_nonstop

step "wheel: build, install into a fresh venv, run"
scripts/check-wheel.sh

step "examples/k8s against the Kubernetes schemas (kubernetes-validate, offline)"
scripts/check-k8s.sh
