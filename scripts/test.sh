#!/usr/bin/env bash
# Installs everything the test suite needs into .venv, then runs the whole suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -k quality).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"

# The browser tests drive Debian's chromium (Playwright cannot download a browser here) and
# the metrics test runs promtool (Debian's prometheus package): install what is missing when
# apt-get can run (as root, or through passwordless sudo).
apt_install() {
  local run=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null || return 1
    run=(sudo -n)
  fi
  local apt=("${run[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -qq)
  "${apt[@]}" install "$1" >/dev/null 2>&1 \
    || { "${apt[@]}" update >/dev/null 2>&1 && "${apt[@]}" install "$1" >/dev/null 2>&1; }
}
if [ ! -x /usr/bin/chromium ] && ! command -v chromium >/dev/null 2>&1 \
    && command -v apt-get >/dev/null 2>&1; then
  apt_install chromium || echo "scripts/test.sh: could not install chromium; the browser tests" \
    "will skip (and fail when CI is set)" >&2
fi
if ! command -v promtool >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  apt_install prometheus || echo "scripts/test.sh: could not install prometheus (promtool);" \
    "the metrics check will skip (and fail when CI is set)" >&2
fi

exec .venv/bin/python -m pytest "$@"
