#!/usr/bin/env bash
# Builds the mlreg wheel (pyproject.toml: maturin, `bindings = "bin"`) into target/wheels from
# a clean checkout: installs the pinned maturin into .venv-tools (scripts/setup-tools.sh),
# generates the man pages and shell completions the wheel installs under share/, then runs
# `maturin build`. Prints the wheel's path on stdout (with --sdist, then the source
# distribution's path: a .tar.gz holding the crate's sources, Cargo.lock and the generated
# files, from which pip builds the same wheel with a Rust toolchain).
#
# Usage: scripts/build-wheel.sh [--sdist]
# Environment: MLREG_WHEEL_PROFILE, the cargo profile (default `release`, what to publish; CI
# uses `dev`, which reuses the binary `cargo test` already built instead of spending minutes on
# an optimized build).
set -euo pipefail
sdist=0
case "${1:-}" in
  "") ;;
  --sdist) sdist=1 ;;
  *) echo "usage: scripts/build-wheel.sh [--sdist]" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
profile="${MLREG_WHEEL_PROFILE:-release}"
case "$profile" in
  dev) out_dir=debug ;;
  *) out_dir="$profile" ;;
esac
tools="$(scripts/setup-tools.sh)"

wheels="${CARGO_TARGET_DIR:-$root/target}/wheels"
version="$(grep -m1 '^version = ' Cargo.toml | cut -d'"' -f2)"
data="$root/target/wheel-data"   # pyproject.toml: [tool.maturin] data
share="$data/data/share"
rm -rf "$data"
mkdir -p "$share/man/man1" "$share/bash-completion/completions" "$share/zsh/site-functions" \
  "$share/fish/vendor_completions.d"

# maturin compiles the binary with flags of its own (strip), so a plain `cargo build` first
# would compile the crate twice. Instead: maturin builds (a wheel without the generated
# files, thrown away), the generated files come from the binary it built, so they match the
# wheel's clap definitions, and the second maturin run finds the binary up to date.
"$tools/maturin" build --locked --profile "$profile" --out "$root/target/wheel-first" >&2
mlreg="${CARGO_TARGET_DIR:-$root/target}/$out_dir/mlreg"
"$mlreg" man --dir "$share/man/man1"
"$mlreg" completions bash >"$share/bash-completion/completions/mlreg"
"$mlreg" completions zsh >"$share/zsh/site-functions/_mlreg"
"$mlreg" completions fish >"$share/fish/vendor_completions.d/mlreg.fish"
rm -rf "$root/target/wheel-first"

rm -f "$wheels"/mlreg-"$version"-*.whl
"$tools/maturin" build --locked --profile "$profile" --out "$wheels" >&2
ls "$wheels"/mlreg-"$version"-*.whl
if [[ "$sdist" == 1 ]]; then
  rm -f "$wheels"/mlreg-"$version".tar.gz
  "$tools/maturin" sdist --out "$wheels" >&2
  ls "$wheels"/mlreg-"$version".tar.gz
fi
