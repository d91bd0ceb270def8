#!/usr/bin/env bash
# Creates .venv with a Python >= 3.11 and installs emugen into it, editable:
#   bash scripts/bootstrap.sh           emugen[dev]: the tests, the gates, the lab (scripts/test.sh)
#   bash scripts/bootstrap.sh runtime   emugen alone: what the fleet runs (scripts/up.sh)
# Safe to run again (the installer skips what is already there); a dev install after a runtime
# one adds the extra. The installer's own output goes to .venv/bootstrap.log: shown only when
# something fails. .venv/emugen-installed records the pyproject.toml it installed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { echo "bootstrap: $*" >&2; }

case "${1:-dev}" in
  dev) spec=".[dev]"; what="emugen[dev]"; size="dozens of packages, about a minute" ;;
  runtime) spec="."; what="emugen (the runtime, no dev extras)"; size="about 20 s" ;;
  *) say "unknown target '${1}'; use: bash scripts/bootstrap.sh [dev|runtime]"; exit 2 ;;
esac

pick_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    # a pyenv shim exists for every version it knows, and complains on stderr when that
    # version is not selected: such a candidate is simply not available
    if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
        >/dev/null 2>&1; then
      echo "$candidate"; return 0
    fi
  done
  say "emugen needs Python 3.11 or newer; set PYTHON=/path/to/python3.11"
  return 1
}

if [ ! -x .venv/bin/python ]; then
  python="$(pick_python)"
  say "creating .venv with $python ($("$python" -c 'import platform; print(platform.python_version())'))"
  "$python" -m venv .venv
fi

log=.venv/bootstrap.log
started=$SECONDS
check="import emugen"
[ "$spec" = "." ] || check="import emugen, pytest"
if .venv/bin/python -I -c "$check" >/dev/null 2>&1; then  # -I: not ./emugen from here
  say "updating $what in .venv (quick when nothing changed) ..."
else
  say "installing $what into .venv: $size on a first run ..."
fi
# uv fetches and installs the ~140 packages in parallel: ~45 s on a first run where pip takes
# ~200 s (pyspark alone is 300 MB). It is pinned, and pip stays the fallback when uv cannot be
# had (an offline mirror without it, say).
UV_VERSION=0.13.9
with_uv() {
  .venv/bin/python -m pip install --quiet "uv==$UV_VERSION" \
    && .venv/bin/uv pip install --quiet --python .venv/bin/python -e "$spec"
}
with_pip() {
  .venv/bin/python -m pip install --quiet --upgrade pip \
    && .venv/bin/python -m pip install --quiet -e "$spec"
}
if ! { with_uv || { echo "uv failed: installing with pip"; with_pip; }; } >"$log" 2>&1; then
  say "pip failed; the end of $log:"
  tail -n 30 "$log" >&2
  exit 1
fi
.venv/bin/python -c 'import hashlib, sys; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())' > .venv/emugen-installed
say "ready in $((SECONDS - started)) s ($(.venv/bin/python -m pip list 2>/dev/null | tail -n +3 | wc -l) packages; pip's log: $log)"
