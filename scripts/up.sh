#!/usr/bin/env bash
# Installs emugen into .venv (first run only takes long), then runs the whole fleet:
# `emugen up` = a Redis (private if none answers), the database, worker, beat, Flower, dashboard.
# Extra arguments go to `emugen up` (e.g. scripts/up.sh --config config/emulated-fast.yaml).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"
exec .venv/bin/emugen up "$@"
