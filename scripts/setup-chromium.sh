#!/usr/bin/env bash
# Installs Debian's `chromium` package when /usr/bin/chromium is missing: the headless
# browser the status page's integration test (tests/it/page.rs) loads the page in.
# Usage: scripts/setup-chromium.sh           (prints the browser's path on stdout)
#
# Needs apt-get and root (or passwordless sudo), and Debian's mirrors. Exits non-zero when the
# browser cannot be had: the test fails rather than skips. MLREG_CHROMIUM names another binary
# to use as is (nothing is installed then).
set -euo pipefail
browser="${MLREG_CHROMIUM:-/usr/bin/chromium}"
if [[ -x "$browser" ]]; then
  echo "$browser"
  exit 0
fi
if [[ -n "${MLREG_CHROMIUM:-}" ]]; then
  echo "setup-chromium: MLREG_CHROMIUM=$browser is not an executable" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "setup-chromium: /usr/bin/chromium is missing and there is no apt-get to install it; install Chromium and set MLREG_CHROMIUM" >&2
  exit 1
fi
sudo=()
if [[ "$(id -u)" != 0 ]]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "setup-chromium: installing Chromium needs root (or passwordless sudo)" >&2
    exit 1
  fi
fi
echo "setup-chromium: installing Debian's chromium package" >&2
# One installer at a time: parallel test binaries may all find the browser missing.
exec 9>"${TMPDIR:-/tmp}/mlreg-setup-chromium.lock"
flock 9
if [[ ! -x "$browser" ]]; then
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq >&2
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
fi
if [[ ! -x "$browser" ]]; then
  echo "setup-chromium: the chromium package did not provide $browser" >&2
  exit 1
fi
"$browser" --version >&2 || true
echo "$browser"
