#!/usr/bin/env bash
# Installs everything the test suite needs into .venv, then runs the whole suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -k quality).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"
exec .venv/bin/python -m pytest "$@"
