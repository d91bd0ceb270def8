#!/usr/bin/env bash
# Installs everything the test suite needs into .venv, runs the gates (ruff, mypy), then the
# whole suite. Arguments, if any, go to one pytest run instead (e.g. scripts/test.sh -k quality).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"

# Some tests drive Debian packages: install them when missing and apt-get can run (as root,
# or through passwordless sudo). The browser tests use chromium (Playwright cannot download a
# browser here); the metrics test runs promtool (prometheus); the Spark example needs Java 17.
apt_install() {
  local run=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null || return 1
    run=(sudo -n)
  fi
  local apt=("${run[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -qq)
  "${apt[@]}" install "$@" >/dev/null 2>&1 \
    || { "${apt[@]}" update >/dev/null 2>&1 && "${apt[@]}" install "$@" >/dev/null 2>&1; }
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
if ! command -v java >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  echo "scripts/test.sh: installing Java 17 (openjdk-17-jre-headless) for the Spark example" >&2
  apt_install openjdk-17-jre-headless || echo "scripts/test.sh: could not install Java; the" \
    "Spark example's test will skip (and fail when CI is set)" >&2
fi
# The accessibility test runs axe-core (the npm package, pinned) inside Chromium.
if [ ! -f .venv/axe/node_modules/axe-core/axe.min.js ]; then
  if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    apt_install npm || true
  fi
  npm install --silent --no-audit --no-fund --prefix .venv/axe axe-core@4.14.1 >/dev/null 2>&1 \
    || echo "scripts/test.sh: could not install axe-core with npm; the accessibility test" \
      "will skip (and fail when CI is set)" >&2
fi
if ! .venv/bin/python -c "import pyspark" >/dev/null 2>&1; then
  echo "scripts/test.sh: installing pyspark (the spark extra, ~1 min) for the Spark example" >&2
  .venv/bin/python -m pip install --quiet -e ".[dev,spark]"
fi

# dbt in a venv of its own (dbt-core 1.11 pins pathspec below what mypy 2 needs), as a data
# team runs it beside their pipeline: the dbt example's test drives .venv/dbt/bin/dbt.
if [ ! -x .venv/dbt/bin/dbt ]; then
  echo "scripts/test.sh: installing dbt-core and dbt-duckdb into .venv/dbt for the dbt example" >&2
  { .venv/bin/python -m venv .venv/dbt \
      && { .venv/bin/uv pip install --quiet --python .venv/dbt/bin/python \
             "dbt-core>=1.11,<1.12" "dbt-duckdb>=1.11,<1.12" \
           || .venv/dbt/bin/python -m pip install --quiet "dbt-core>=1.11,<1.12" \
                "dbt-duckdb>=1.11,<1.12"; }; } >/dev/null 2>&1 \
    || echo "scripts/test.sh: could not install dbt; its example's test will skip (and fail" \
      "when CI is set)" >&2
fi

# The gates, fast and first: a style, complexity or type error fails before the long suite runs.
gate() {
  local name="$1"
  shift
  if ! "$@"; then
    echo "scripts/test.sh: gate failed: $name (run: $*)" >&2
    exit 1
  fi
}
gate "ruff (lint, complexity C90 <= 12, arguments PLR0913)" .venv/bin/ruff check .
gate "ruff format (the formatter's style; run: .venv/bin/ruff format .)" \
  .venv/bin/ruff format --check .
gate "mypy (types, pydantic plugin, zero errors)" .venv/bin/mypy emugen
gate "structure (layers point down, no import circle, module sizes)" \
  .venv/bin/python -m pytest -q tests/test_structure.py
# the docs site builds with every link and anchor resolved (offline: no fonts, no plugins fetch)
gate "docs (mkdocs build --strict)" env NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict \
  --quiet --site-dir "$(mktemp -d)"

# With arguments, one plain pytest run of exactly what was asked (scripts/test.sh -k quality).
if [ "$#" -gt 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
# The whole suite in two runs. First the unit tests and the reference consumers' examples on two
# pytest-xdist workers: the unit tests share nothing but PostgreSQL (a private schema each); the
# examples (Spark, dbt, DuckDB: judged on answers, not on latency) stay together on one worker
# (tests/conftest.py's scheduler) while the other takes unit tests. Then the tests that start real fleets
# and browsers, one at a time: they judge latency and cadence, which a neighbour competing for
# the same 2 cores would distort.
.venv/bin/python -m pytest -n 2 tests --ignore=tests/integration
exec .venv/bin/python -m pytest tests/integration
