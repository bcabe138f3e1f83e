#!/usr/bin/env bash
# Fails when a crate listed in Cargo.toml is not used: every name under [dependencies],
# [dev-dependencies] and [build-dependencies] (with `-` read as `_`) must appear in the Rust
# sources (src/, tests/, bench/, build.rs) as `name::`, `use name`, `name!` or
# `extern crate name`. A heuristic, not a compiler: it finds the dependency nobody removed
# after the code that needed it went away, in a second and without building anything.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Crates used without ever being named in the code (only through another crate's features,
# or a derive that expands to a path of its own). Each entry says why; keep the list short.
IGNORED=(
)

# The dependency names: keys of the dependency tables, and `[dependencies.NAME]` headers.
names=$(awk '
  /^[[:space:]]*\[/ {
    header = $0
    gsub(/^[[:space:]]*\[+|\]+[[:space:]]*(#.*)?$/, "", header)
    section = ""
    if (header ~ /(^|\.)(dev-|build-)?dependencies$/) {
      section = "table"
    } else if (header ~ /(^|\.)(dev-|build-)?dependencies\.[A-Za-z0-9_-]+$/) {
      sub(/.*dependencies\./, "", header)
      print header
    }
    next
  }
  section == "table" && /^[[:space:]]*[A-Za-z0-9_-]+[[:space:]]*=/ {
    name = $0
    sub(/^[[:space:]]*/, "", name)
    sub(/[[:space:]]*=.*/, "", name)
    print name
  }
' Cargo.toml | sort -u)

sources=()
for path in src tests bench build.rs; do
  [[ -e $path ]] && sources+=("$path")
done

unused=()
for name in $names; do
  crate=${name//-/_}
  # `${IGNORED[@]+...}`: an empty array is "unbound" to `set -u` in bash before 4.4.
  for ignored in ${IGNORED[@]+"${IGNORED[@]}"}; do
    [[ $crate == "$ignored" ]] && continue 2
  done
  # `name::` or `name!` not preceded by another path segment (so `std::time::` is not
  # the `time` crate), `use name` and `extern crate name`.
  pattern="(^|[^[:alnum:]_:])(::)?${crate}(::|!)|\buse[[:space:]]+${crate}\b|\bextern[[:space:]]+crate[[:space:]]+${crate}\b"
  if ! grep -rqE --include='*.rs' "$pattern" "${sources[@]}"; then
    unused+=("$name")
  fi
done

if ((${#unused[@]})); then
  for name in "${unused[@]}"; do
    echo "unused-deps: \`$name\` is in Cargo.toml but no Rust source names it (\`${name//-/_}::\`, \`use ${name//-/_}\`, \`${name//-/_}!\`); remove it, or add it to IGNORED in scripts/unused-deps.sh with the reason" >&2
  done
  exit 1
fi
echo "unused-deps: every dependency in Cargo.toml is used" >&2
