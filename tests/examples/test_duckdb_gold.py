"""The DuckDB reference consumer and the naive one, graded on their gold under `exact`, on a
landing zone with late, redelivered and delayed events."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb

from tests.examples.arrival_zone import ArrivalZone, grade_gold, named

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(script: str, zone: ArrivalZone, out: Path) -> Path:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), str(zone.root("jsonl")), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return out / "gold_company_window.parquet"


def test_the_duckdb_medallion_passes_exact_with_late_redelivered_and_delayed_data(
    arrival_zone, tmp_path
):
    code, grade = grade_gold(
        arrival_zone, _run("duckdb/medallion.py", arrival_zone, tmp_path), "exact"
    )
    assert (code, grade["verdict"], grade["wrong"]) == (0, "PASS", 0), grade["wrong_cells"][:3]
    assert grade["pending"] == 0 and grade["ok"] == grade["cells"] > 100
    late = sum(len(rows) for rows in arrival_zone.ledger("late").values())
    assert late > 10, "the zone holds too few late records to test anything"


def test_the_naive_consumer_fails_naming_the_redelivered_copies_it_counted(arrival_zone, tmp_path):
    code, grade = grade_gold(arrival_zone, _run("naive/naive.py", arrival_zone, tmp_path), "exact")
    assert (code, grade["verdict"]) == (1, "FAIL")
    # the copies it counted: the ledger's redelivered rows that its silver holds (a copy of a
    # late record can lie before its own batch's lateness horizon: it quarantines those)
    copies = {(b, r) for b, rows in arrival_zone.ledger("redelivered").items() for r in rows}
    silver = duckdb.sql(
        f"SELECT batch_id, row_no, company_id, "
        f"epoch_ms(event_timestamp) // 60000 * 60000 AS w "
        f"FROM '{tmp_path / 'silver_events.parquet'}'"
    ).fetchall()
    counted = {(b, r): (w, company) for b, r, company, w in silver if (b, r) in copies}
    assert len(counted) > 5
    # named by id: the redelivered rows of the cells it got wrong (without --kept the grader
    # cannot tell which copy of a cell a consumer counted, so it names the cell's copies)
    names = {(b, r) for b, r, _ in named(grade, "redelivered_counted")}
    assert names <= copies and len(names & counted.keys()) > 5
    wrong = {
        (c["window_start_ms"], c["key"]) for c in grade["wrong_cells"] if c["metric"] == "events"
    }
    assert set(counted.values()) == wrong  # every cell a copy was counted in, and no other
