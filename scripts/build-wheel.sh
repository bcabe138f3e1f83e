#!/usr/bin/env bash
# Builds the mlreg wheel (pyproject.toml: maturin, `bindings = "bin"`) into target/wheels from
# a clean checkout: installs the pinned maturin into .venv-tools (scripts/setup-tools.sh),
# generates the man pages and shell completions the wheel installs under share/, then runs
# `maturin build`. Prints the wheel's path on stdout.
#
# Usage: scripts/build-wheel.sh
# Environment: MLREG_WHEEL_PROFILE, the cargo profile (default `release`, what to publish; CI
# uses `dev`, which reuses the binary `cargo test` already built instead of spending minutes on
# an optimized build).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
profile="${MLREG_WHEEL_PROFILE:-release}"
case "$profile" in
  dev) out_dir=debug ;;
  *) out_dir="$profile" ;;
esac
tools="$(scripts/setup-tools.sh)"

# The generated files come from this very binary, so they match the wheel's clap definitions.
cargo build --locked --quiet --profile "$profile" --bin mlreg >&2
mlreg="${CARGO_TARGET_DIR:-$root/target}/$out_dir/mlreg"
data="$root/target/wheel-data"   # pyproject.toml: [tool.maturin] data
rm -rf "$data"
share="$data/data/share"
mkdir -p "$share/bash-completion/completions" "$share/zsh/site-functions" \
  "$share/fish/vendor_completions.d"
"$mlreg" man --dir "$share/man/man1"
"$mlreg" completions bash >"$share/bash-completion/completions/mlreg"
"$mlreg" completions zsh >"$share/zsh/site-functions/_mlreg"
"$mlreg" completions fish >"$share/fish/vendor_completions.d/mlreg.fish"

wheels="${CARGO_TARGET_DIR:-$root/target}/wheels"
version="$(grep -m1 '^version = ' Cargo.toml | cut -d'"' -f2)"
rm -f "$wheels"/mlreg-"$version"-*.whl
"$tools/maturin" build --locked --profile "$profile" --out "$wheels" >&2
ls "$wheels"/mlreg-"$version"-*.whl
