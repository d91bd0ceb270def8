"""examples/dbt (dbt-core 1.11 with dbt-duckdb): incremental silver and gold over the landing
zone's JSON Lines, one `dbt run` per released events file (copied into a staging zone in release
order), graded under `--policy lookback=N`. A lookback that covers the data's lateness passes;
lookback 0 fails, naming the records of the delayed batch it never counted, and passes graded
under its own declaration (each event counted at its first arrival, a copy before its original).
dbt runs offline with anonymous usage stats off. Skips without dbt locally; fails when CI is set.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.examples.arrival_zone import ArrivalZone, grade_gold, named

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
PROJECT = Path(__file__).resolve().parents[2] / "examples" / "dbt"
ENOUGH = 3  # windows: 90 s of lateness plus a 20-second batch delayed behind one more
QUERY = "SELECT * FROM gold_company_window"


# dbt lives in a venv of its own, as a data team's usually does: dbt-core 1.11 pins pathspec
# below what the test tools need. scripts/test.sh makes it (.venv/dbt); EMUGEN_DBT overrides.
DBT = Path(
    os.environ.get("EMUGEN_DBT")
    or Path(__file__).resolve().parents[2] / ".venv" / "dbt" / "bin" / "dbt"
)


def dbt_or_skip() -> None:
    if not DBT.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but there is no dbt at {DBT} (scripts/test.sh installs it)")
        pytest.skip(
            f"the dbt example needs dbt-core and dbt-duckdb at {DBT} "
            "(scripts/test.sh installs them, or set EMUGEN_DBT)"
        )


def dbt_start(build: Path, staging: Path, lookback: int) -> subprocess.Popen[str]:
    """One `dbt run` of the project into `build`, started (its output kept for a failure)."""
    env = {**os.environ, "EMUGEN_DBT_DIR": str(build), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return subprocess.Popen(
        [
            str(DBT),
            "run",
            "--project-dir",
            str(PROJECT),
            "--profiles-dir",
            str(PROJECT),
            "--target-path",
            str(build / "target"),
            "--log-path",
            str(build / "logs"),
            "--vars",
            json.dumps({"landing": str(staging), "lookback_windows": lookback}),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def dbt_runs(runs: dict[Path, tuple[Path, int]]) -> None:
    """`dbt run` into each build at once (separate DuckDB files and target paths: a `dbt run`
    is mostly one core's start-up, so two side by side take the time of one)."""
    started = [dbt_start(build, staging, lookback) for build, (staging, lookback) in runs.items()]
    try:
        for process in started:
            out, _ = process.communicate(timeout=300)
            assert process.returncode == 0, out[-4000:]
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()


# session-scoped: built once even when the tests of another module run between this one's
@pytest.fixture(scope="session")
def dbt_builds(arrival_zone: ArrivalZone, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The project built twice (lookback ENOUGH and 0), one run per released events file."""
    dbt_or_skip()
    base = tmp_path_factory.mktemp("dbt")
    staging, builds = base / "staging", {n: base / f"lookback-{n}" for n in (ENOUGH, 0)}
    for build in builds.values():
        build.mkdir()
    for upto, (batch_id, _) in enumerate(arrival_zone.released, start=1):
        if not batch_id.startswith("events"):
            continue
        arrival_zone.stage("jsonl", staging, upto)
        dbt_runs({build: (staging, lookback) for lookback, build in builds.items()})
    return {n: f"duckdb:///{build / 'emugen.duckdb'}" for n, build in builds.items()}


def test_a_lookback_covering_the_lateness_passes_lookback_grading(arrival_zone, dbt_builds):
    code, grade = grade_gold(
        arrival_zone, dbt_builds[ENOUGH], f"lookback={ENOUGH}", "--gold-query", QUERY
    )
    assert (code, grade["verdict"], grade["wrong"]) == (0, "PASS", 0), grade["wrong_cells"][:3]
    assert grade["ok"] == grade["cells"] > 100
    # nothing lost to the policy either: this lookback is as good as a full refresh
    code, exact = grade_gold(arrival_zone, dbt_builds[ENOUGH], "exact", "--gold-query", QUERY)
    assert (code, exact["wrong"]) == (0, 0)


def test_lookback_zero_fails_naming_the_delayed_batchs_records(arrival_zone, dbt_builds):
    code, grade = grade_gold(
        arrival_zone, dbt_builds[0], f"lookback={ENOUGH}", "--gold-query", QUERY
    )
    assert (code, grade["verdict"]) == (1, "FAIL")
    delayed = set(arrival_zone.ledger("delayed"))
    missed = named(grade, "delayed_missed")
    assert missed and {b for b, _, _ in missed} <= delayed
    # the late records it lost: late by the ledger, or behind the stream because their
    # batch's file was delayed
    late = {(b, r) for b, rows in arrival_zone.ledger("late").items() for r in rows}
    lost = {(b, r) for b, r, _ in named(grade, "late_dropped")}
    assert lost and all(key in late or key[0] in delayed for key in lost)
    assert {c["cause"] for cell in grade["wrong_cells"] for c in cell["causes"]} <= {
        "late_dropped",
        "delayed_missed",
    }


def test_lookback_zero_graded_under_its_own_declaration_passes(arrival_zone, dbt_builds):
    code, own = grade_gold(arrival_zone, dbt_builds[0], "lookback=0", "--gold-query", QUERY)
    assert (code, own["wrong"]) == (0, 0), own["wrong_cells"][:3]
