#!/usr/bin/env bash
# Runs the whole fleet: `emugen up` = a Redis (private if none answers), the database, worker,
# beat, Flower and the dashboard. The first run installs emugen into .venv: the runtime only
# (bootstrap.sh runtime), not the dev extras the tests need (scripts/test.sh adds those); later
# runs install nothing unless pyproject.toml changed since.
# Extra arguments go to `emugen up` (e.g. scripts/up.sh --config config/emulated-fast.yaml).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
installed="$(cat .venv/emugen-installed 2>/dev/null || true)"
wanted="$( (sha256sum pyproject.toml || shasum -a 256 pyproject.toml) 2>/dev/null | cut -d' ' -f1)"
if [ -z "$installed" ] || [ "$installed" != "$wanted" ] || [ ! -x .venv/bin/emugen ]; then
  bash "$root/scripts/bootstrap.sh" runtime
fi
exec .venv/bin/emugen up "$@"
