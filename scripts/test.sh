#!/usr/bin/env bash
# The project's test command (README, CI): installs the pinned MLflow into .venv if needed,
# then checks formatting, lints, the forbidden-pattern list, unused dependencies and the API
# docs, and runs every test — unit tests and the integration tests, which start their own
# MLflow server.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "MLflow (pinned in requirements-mlflow.txt) into .venv"
scripts/setup-mlflow.sh >/dev/null

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
