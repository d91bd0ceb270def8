"""The DuckDB reference consumer's filter, graded on a landing zone with late, redelivered and
delayed events: it passes on the whole zone, and on a zone read before a delayed batch's file
was released, that batch is pending, not lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from emugen.cli import main
from tests.examples.arrival_zone import ArrivalZone

MEDALLION = Path(__file__).resolve().parents[2] / "examples" / "duckdb" / "medallion.py"


def _filter_grade(zone: ArrivalZone, root: Path, out: Path) -> tuple[int, dict]:
    done = subprocess.run(
        [sys.executable, str(MEDALLION), str(root), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = CliRunner().invoke(
        main,
        [
            "grade",
            "--kept",
            str(out / "silver_*.parquet"),
            "--rejected",
            str(out / "quarantine.parquet"),
            "--config",
            str(zone.config),
            "--json",
        ],
    )
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.output)


def test_the_duckdb_filter_passes_with_late_redelivered_and_delayed_data(arrival_zone, tmp_path):
    code, grade = _filter_grade(arrival_zone, arrival_zone.root("jsonl"), tmp_path / "out")
    events = grade["streams"]["events"]
    assert code == 0, grade["failures"]
    assert (events["late_rejected"], events["held_batches"], events["lost"]) == (0, 0, 0)


def test_a_delayed_batch_not_yet_released_is_pending_for_the_duckdb_filter(arrival_zone, tmp_path):
    delayed = arrival_zone.ledger("delayed")
    order = [b for b, _ in arrival_zone.released]
    # the first point in release order where a delayed batch is still held back while a later
    # batch has landed
    upto = next(
        i
        for i in range(1, len(order) + 1)
        if any(b not in order[:i] and b < max(order[:i]) for b in delayed)
    )
    staged = tmp_path / "zone"
    arrival_zone.stage("jsonl", staged, upto)
    code, grade = _filter_grade(arrival_zone, staged, tmp_path / "out")
    events = grade["streams"]["events"]
    assert code == 0, grade["failures"]
    assert events["held_batches"] >= 1 and events["lost"] == 0, events
