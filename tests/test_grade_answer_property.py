"""Property: for random small landings with arrival conditions (late, out of order,
redelivered, delayed) and defects, the expected gold under `exact` equals a naive
recomputation, the watermark and lookback gold equal an engine simulated file by file, and each
change made to a consumer's gold is explained by exactly its cause."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.answer_helpers import Landing, grade

WINDOW = 30
# per landed file: events as (seconds into the file's 30 s interval, or back as far as 80 s
# for a late one; driver; defect?)
EVENT = st.tuples(st.integers(-80, 29), st.sampled_from(["d1", "d2", "d3"]), st.booleans())
FILES = st.lists(st.lists(EVENT, max_size=5), min_size=2, max_size=5)


def build(files: list, copies: list[int], delayed: int | None) -> Landing:
    """Land the files; each entry of `copies` redelivers an earlier valid record."""
    landing = Landing()
    for seq, events in enumerate(files, start=1):
        start = 1000 + seq * WINDOW
        for offset, driver, defect in events:
            row = landing.event(
                seq,
                start + offset,
                driver=driver,
                defect="invalid_enum" if defect and offset >= 0 else None,
            )
            if offset < 0 and row["defect"] is None:
                landing.late(seq, row["row_no"])
        earlier = [
            r
            for r in landing.rows
            if r["defect"] is None and int(r["batch_id"][-9:]) < seq and r["stream"] == "events"
        ]
        for pick in copies:
            if earlier:
                source = earlier[pick % len(earlier)]
                landing.event(
                    seq,
                    _time(source),
                    event_id=source["natural_id"],
                    driver=_driver(source),
                    copy_of=(int(source["batch_id"][-9:]), source["row_no"]),
                )
    if delayed is not None and delayed < len(files) and files[delayed]:  # waits for a file
        landing.delay(delayed, until=delayed + 1)
    return landing


def _payload(row: dict) -> dict:
    return json.loads(row["payload"])


def _time(row: dict) -> float:
    return datetime.fromisoformat(
        _payload(row)["event_timestamp"].replace("Z", "+00:00")
    ).timestamp()


def _driver(row: dict) -> str:
    return _payload(row)["driver_id"]


def naive_gold(rows: list[dict]) -> dict[tuple, list]:
    """Per (window, company): [events, start_driving, 0, 0, drivers], each event id once."""
    seen: set[str] = set()
    cells: dict[tuple, list] = {}
    for row in rows:  # landing order: an original always comes before its copy here
        if row["defect"] is not None or row["natural_id"] in seen:
            continue
        seen.add(row["natural_id"])
        w = int(_time(row)) // WINDOW * WINDOW
        cell = cells.setdefault((w, "c1"), [0, 0, 0, 0, set()])
        cell[0] += 1
        cell[1] += 1
        cell[4].add(_driver(row))
    return cells


def rows_of(cells: dict[tuple, list]) -> list[tuple]:
    return [(w, k, n, s, a, b, len(d)) for (w, k), (n, s, a, b, d) in sorted(cells.items())]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=FILES,
    copies=st.lists(st.integers(0, 50), max_size=2),
    delayed=st.one_of(st.none(), st.integers(1, 4)),
)
def test_exact_expected_gold_equals_a_naive_recomputation(files, copies, delayed):
    landing = build(files, copies, delayed)
    cells = naive_gold(landing.rows)
    if not cells:
        return
    with tempfile.TemporaryDirectory() as tmp:
        result = grade(Path(tmp), landing, rows_of(cells))
    assert result["wrong"] == 0 and result["pending"] == 0, result["wrong_cells"]
    assert all(row["balanced"] for row in result["conservation"])


def _cell_classes(landing: Landing) -> dict[int, Counter]:
    """Per window: how many late, copy and defect records it holds (for identifiability)."""
    out: dict[int, Counter] = {}
    seen: set[str] = set()
    late = {(e["batch_id"], e["row_no"]) for e in landing.ledger if e["condition"] == "late"}
    for row in landing.rows:
        w = int(_time(row)) // WINDOW * WINDOW
        if row["defect"] is not None:
            kind = "defect"
        elif row["natural_id"] in seen:
            kind = "copy"
        else:
            kind = "late" if (row["batch_id"], row["row_no"]) in late else "clean"
        seen.add(row["natural_id"])
        out.setdefault(w, Counter())[kind] += 1
    return out


CHANGE = {"late": "late_dropped", "copy": "redelivered_counted", "defect": "defect_counted"}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=FILES,
    copies=st.lists(st.integers(0, 50), max_size=3),
    picks=st.lists(st.sampled_from(sorted(CHANGE)), min_size=1, max_size=3),
)
def test_each_change_to_a_consumers_gold_is_explained_by_exactly_its_cause(files, copies, picks):
    """Drop a late record from the gold, or count a copy or a defect in it, in windows where
    that change is identifiable: no other class in the window moves the count the same way."""
    landing = build(files, copies, None)
    cells = naive_gold(landing.rows)
    classes = _cell_classes(landing)
    changed: dict[int, str] = {}
    for kind in picks:
        for w, found in sorted(classes.items()):
            same_sign = ("copy", "defect") if kind != "late" else ("late",)
            if w in changed or not found[kind] or any(found[o] for o in same_sign if o != kind):
                continue
            cell = cells.setdefault((w, "c1"), [0, 0, 0, 0, set()])
            step = -1 if kind == "late" else 1
            cell[0] += step
            cell[1] += step
            changed[w] = CHANGE[kind]
            break
    if not changed or not any(n for n, *_ in cells.values()):
        return
    with tempfile.TemporaryDirectory() as tmp:
        result = grade(Path(tmp), landing, rows_of(cells))
    found = {
        c["window_start_ms"] // 1000: [x["cause"] for x in c["causes"]]
        for c in result["wrong_cells"]
        if c["metric"] == "events"
    }
    assert found == {w: [cause] for w, cause in changed.items()}, result["wrong_cells"]


def simulated_gold(landing: Landing, policy: str) -> dict[tuple, list]:
    """What an engine following `policy` writes, simulated file by file in release order:
    Spark's per-batch watermark (10 s) or a dbt lookback of one window."""
    by_file: dict[int, list[dict]] = {}
    for row in landing.rows:
        by_file.setdefault(int(row["batch_id"][-9:]), []).append(row)
    seen: set[str] = set()
    tops: list[float | None] = []  # newest valid event time of each landed file, in order
    cells: dict[tuple, list] = {}
    for seq in sorted(by_file):  # a file with no record never landed: no micro-batch
        rows = [r for r in by_file[seq] if r["defect"] is None]
        for row in rows:
            at = _time(row)
            w = int(at) // WINDOW * WINDOW
            if policy == "watermark":
                mark = max((t for t in tops[:-1] if t is not None), default=None)  # < k - 1
                dropped = mark is not None and w + WINDOW <= mark - 10
            else:
                mark = max((t for t in tops if t is not None), default=None)  # files < k
                dropped = mark is not None and w < int(mark) // WINDOW * WINDOW - WINDOW
            if dropped or row["natural_id"] in seen:
                continue
            seen.add(row["natural_id"])
            cell = cells.setdefault((w, "c1"), [0, 0, 0, 0, set()])
            cell[0] += 1
            cell[1] += 1
            cell[4].add(_driver(row))
        tops.append(max((_time(r) for r in rows), default=None))
    return cells


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=FILES,
    copies=st.lists(st.integers(0, 50), max_size=2),
    policy=st.sampled_from(["watermark", "lookback"]),
)
def test_watermark_and_lookback_expected_gold_equal_an_engine_simulated_file_by_file(
    files, copies, policy
):
    landing = build(files, copies, None)
    cells = simulated_gold(landing, policy)
    if not any(n for n, *_ in cells.values()):
        return
    declared = ("watermark=10s", "per-batch") if policy == "watermark" else ("lookback=1", "any")
    with tempfile.TemporaryDirectory() as tmp:
        result = grade(Path(tmp), landing, rows_of(cells), *declared)
    assert result["wrong"] == 0, result["wrong_cells"]
