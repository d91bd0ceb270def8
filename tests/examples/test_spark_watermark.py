"""The Spark example's watermarked gold (examples/spark/watermark.py), graded on a landing zone
with late, redelivered and delayed events, one landed file per micro-batch in release order.

Run once with the default delay (the landing's lateness horizon) it passes `--policy
watermark=D --trigger per-batch`. Run again with a watermark of 0 s, shorter than the data's
lateness, Spark drops late rows: the records it dropped are computed here independently (the
rule measured in NOTES.md) and checked against Spark's own silver and gold, against the arrival
ledger, and against what `emugen grade` names. Skips without Java or pyspark; fails under CI.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from emugen.db.models import SilverEvent
from emugen.db.session import read_session
from tests.examples.arrival_zone import ArrivalZone, grade_gold, named
from tests.examples.spark_helpers import WAIT, job, spark_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
HORIZON = 130  # max_lateness 90 s + (max_delay 1 + 1) x 20-second batches: the job's default
SHORT = 0
WIDTH = 60_000


# session-scoped: built once even when the tests of another module run between this one's
@pytest.fixture(scope="session")
def spark_out(arrival_zone: ArrivalZone, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run with the default watermark, then one with SHORT on the same silver."""
    spark_or_skip()
    out = tmp_path_factory.mktemp("spark_gold") / "out"
    common = ("--once", "--max-files", "1", "--streaming-gold-only")
    for extra in (
        (),
        ("--watermark-seconds", str(SHORT), "--watermark-out", str(out / "gold_short")),
    ):
        with job(out, arrival_zone.root("parquet"), *common, *extra) as process:
            assert process.wait(timeout=2 * WAIT) == 0
    log = (out.parent / "out.log").read_text()
    assert f"delay {SHORT} s" in log
    return out


def _cells(rows: list[tuple[int, str]]) -> dict[tuple[int, str], int]:
    out: dict[tuple[int, str], int] = {}
    for cell in rows:
        out[cell] = out.get(cell, 0) + 1
    return out


def dropped_by_rule(zone: ArrivalZone, delay_ms: int) -> tuple[dict, int]:
    """(batch_id, row_no) -> (window, company) of the valid records a watermark of `delay_ms`
    drops when file k is micro-batch k: its window ended by the newest event time of the
    files before file k-1, less the delay. And the end of the last window Spark surely
    emitted (the watermark of the last micro-batch)."""
    with read_session(zone.engine) as session:
        rows = session.execute(
            select(
                SilverEvent.batch_id,
                SilverEvent.row_no,
                SilverEvent.company_id,
                SilverEvent.event_ms,
            )
        ).all()
    by_batch: dict[str, list] = {}
    for batch_id, row_no, company, ms in rows:
        by_batch.setdefault(batch_id, []).append((row_no, company, ms))
    order = [b for b, _ in zone.released if b.startswith("events")]
    tops = [max((ms for _, _, ms in by_batch.get(b, [])), default=None) for b in order]
    dropped = {}
    for k, batch_id in enumerate(order):
        seen = [t for t in tops[: max(k - 1, 0)] if t is not None]
        if not seen:
            continue
        for row_no, company, ms in by_batch.get(batch_id, []):
            if ms // WIDTH * WIDTH + WIDTH <= max(seen) - delay_ms:
                dropped[(batch_id, row_no)] = (ms // WIDTH * WIDTH, company)
    last = max(t for t in tops[:-1] if t is not None) - delay_ms
    return dropped, last


def test_the_watermarked_gold_passes_its_own_policy_one_file_per_micro_batch(
    arrival_zone, spark_out
):
    code, grade = grade_gold(
        arrival_zone,
        spark_out / "gold" / "watermark",
        f"watermark={HORIZON}s",
        "--trigger",
        "per-batch",
    )
    assert (code, grade["verdict"], grade["wrong"]) == (0, "PASS", 0), grade["wrong_cells"][:3]
    assert grade["ok"] >= 50  # windows the watermark passed were graded, not all pending
    assert sum(c["dropped_late"] for c in grade["conservation"]) == 0


def test_spark_drops_exactly_the_records_the_per_batch_watermark_rule_names(
    arrival_zone, spark_out
):
    dropped, emitted_until = dropped_by_rule(arrival_zone, SHORT * 1000)
    assert len(dropped) >= 5, "the zone gives the short watermark too little to drop"
    silver = pq.read_table(
        spark_out / "silver" / "events", columns=["event_timestamp", "company_id"]
    ).to_pylist()
    kept = _cells(
        [
            (int(r["event_timestamp"].timestamp() * 1000) // WIDTH * WIDTH, r["company_id"])
            for r in silver
        ]
    )
    gold = {
        (r["window_start_ms"], r["company_id"]): r["events"]
        for r in pq.read_table(
            spark_out / "gold_short", columns=["window_start_ms", "company_id", "events"]
        ).to_pylist()
    }
    lost = _cells(list(dropped.values()))
    for cell, n in kept.items():
        if cell[0] + WIDTH <= emitted_until:
            assert n - gold.get(cell, 0) == lost.get(cell, 0), cell
    # every record dropped is late by the ledger or in a batch whose file was delayed
    late = {(b, r) for b, rows in arrival_zone.ledger("late").items() for r in rows}
    delayed = set(arrival_zone.ledger("delayed"))
    assert all(key in late or key[0] in delayed for key in dropped)
    # and the grader's per-batch watermark policy is Spark's: the run passes its own policy
    code, grade = grade_gold(
        arrival_zone, spark_out / "gold_short", f"watermark={SHORT}s", "--trigger", "per-batch"
    )
    assert (code, grade["wrong"]) == (0, 0), grade["wrong_cells"][:3]
    assert sum(c["dropped_late"] for c in grade["conservation"]) == len(dropped)


def test_a_watermark_shorter_than_the_lateness_fails_naming_the_dropped_late_records(
    arrival_zone, spark_out
):
    dropped, _ = dropped_by_rule(arrival_zone, SHORT * 1000)
    code, grade = grade_gold(
        arrival_zone, spark_out / "gold_short", f"watermark={HORIZON}s", "--trigger", "per-batch"
    )
    assert (code, grade["verdict"]) == (1, "FAIL")
    # each wrong events cell is short by exactly the records the short watermark dropped
    lost = _cells(list(dropped.values()))
    events = {
        (c["window_start_ms"], c["key"]): c for c in grade["wrong_cells"] if c["metric"] == "events"
    }
    assert events.keys() == lost.keys()
    assert all(c["difference"] == -lost[cell] for cell, c in events.items())
    # named by id among the ledger's late records and the delayed batches' records (without
    # --kept the grader cannot tell which late records of a cell Spark dropped: it names the
    # cell's first ones), and every dropped record's cell names some
    late = {(b, r) for b, rows in arrival_zone.ledger("late").items() for r in rows}
    delayed = set(arrival_zone.ledger("delayed"))
    names = {(b, r) for b, r, _ in named(grade, "late_dropped", "delayed_missed")}
    assert names and all(key in late or key[0] in delayed for key in names)
    assert len(names & dropped.keys()) >= min(len(dropped), 5)
