"""The filter grade under arrival conditions, on hand-built truths and ledgers: late data
rejected, redelivered copies kept, the new schema rejected, delayed batches not yet released."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from emugen.cli import main
from emugen.db.ledger import DELAYED_ENTRY, DRIFT_ENTRY, LEDGER_COLUMNS
from emugen.grade.cli import overall

B = [f"events-{n:09d}" for n in range(6)]  # B[1]..B[5]
LATE = (B[1], 2)
COPY, ORIGINAL = (B[2], 1), (B[1], 0)
HELD = B[3]  # delayed: its file lands after B[4]'s
DRIFT = B[4]  # from here on records carry fuel_level


def _payload(eid: str, drifted: bool) -> str:
    record = {"event_id": eid, "company_id": "c1", "event_type": "delivered"}
    return json.dumps({**record, "fuel_level": 0.5} if drifted else record)


def _records() -> list[tuple[str, int, str, str | None]]:
    """(batch_id, row_no, event id, defect) of every landed record."""
    rows = [(B[1], r, f"E1{r}", None) for r in range(4)]
    rows += [(B[2], 0, "E20", None), (*COPY, "E10", "redelivered"), (B[2], 2, "E22", None)]
    rows += [(b, r, f"E{b[-1]}{r}", None) for b in B[3:6] for r in range(2)]
    return rows


def _truth(folder: Path) -> str:
    rows = [
        {
            "batch_id": b,
            "stream": "events",
            "row_no": r,
            "natural_id": i,
            "defect": d,
            "field": "event_id" if d else None,
            "original": f"{ORIGINAL[0]} row {ORIGINAL[1]}" if d else None,
            "injected": None,
            "expected_reason": "duplicate" if d else None,
            "payload": _payload(i, b >= DRIFT),
        }
        for b, r, i, d in _records()
    ]
    pq.write_table(pa.Table.from_pylist(rows), folder / "truth.parquet")
    return str(folder / "truth.parquet")


def _arrivals(folder: Path) -> str:
    def entry(batch_id: str, entry: int, condition: str, **more: object) -> dict:
        return {c: None for c in LEDGER_COLUMNS} | {
            "batch_id": batch_id,
            "entry": entry,
            "condition": condition,
            **more,
        }

    rows = [
        entry(LATE[0], LATE[1], "late", row_no=LATE[1], lateness_ms=90_000),
        entry(
            *COPY,
            "redelivered",
            row_no=COPY[1],
            original_batch_id=ORIGINAL[0],
            original_row_no=ORIGINAL[1],
        ),
        entry(HELD, DELAYED_ENTRY, "delayed", released_after_batch_id=B[4]),
        entry(
            DRIFT,
            DRIFT_ENTRY,
            "drift",
            stream="events",
            from_seq=4,
            contract_version=2,
            field="fuel_level",
        ),
    ]
    schema = pa.schema(
        [
            (
                c,
                pa.int64()
                if c
                in (
                    "entry",
                    "row_no",
                    "lateness_ms",
                    "original_row_no",
                    "from_seq",
                    "contract_version",
                )
                else pa.string(),
            )
            for c in LEDGER_COLUMNS
        ]
    )
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / "arrivals.parquet")
    return str(folder / "arrivals.parquet")


def _output(folder: Path, kept: list[tuple[str, int]], rejected: list[tuple[str, int]]) -> list:
    paths = []
    for name, keys in (("kept", kept), ("rejected", rejected)):
        if not keys:  # an empty JSON Lines file has no columns: the input is left out
            continue
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"batch_id": b, "row_no": r}) + "\n" for b, r in keys))
        paths += [f"--{name}", str(path)]
    return paths


def _grade(folder: Path, kept: list, rejected: list, *flags: str) -> tuple[int, str]:
    args = ["grade", "--truth", _truth(folder), "--arrivals", _arrivals(folder)]
    result = CliRunner().invoke(main, [*args, *_output(folder, kept, rejected), *flags])
    return result.exit_code, result.output


def _all(*batches: str) -> list[tuple[str, int]]:
    return [(b, r) for b, r, _, _ in _records() if b in batches]


def _a_careless_consumer(tmp_path: Path, *flags: str) -> tuple[int, str]:
    """Reached B[4], whose file the delayed B[3]'s follows (so it may not have it yet);
    rejects the late record and every drifted one; keeps the redelivered copy."""
    rejected = [LATE, *_all(DRIFT)]
    kept = [k for k in _all(B[1], B[2]) if k != LATE]
    return _grade(tmp_path, kept, rejected, *flags)


def test_rejecting_a_late_record_is_a_false_alarm_named_rejected_late_data(tmp_path):
    code, text = _a_careless_consumer(tmp_path)
    assert code == 1, text
    assert "  rejected late data: 1 record (late data is valid)" in text
    assert f"rejected late data   events    {LATE[0]} row {LATE[1]}: clean record" in text


def test_rejected_drifted_records_are_one_line_naming_the_drift_batch(tmp_path):
    code, text = _a_careless_consumer(tmp_path)
    assert f"  rejected the new schema from batch {DRIFT} (2 rows)" in text, text


def test_a_kept_redelivered_copy_is_an_escaped_duplicate_named_by_its_original(tmp_path):
    code, text = _a_careless_consumer(tmp_path)
    expected = f"kept 1 redelivered copy (escaped duplicates): copies of {ORIGINAL[0]} row 0"
    assert expected in text, text
    assert f"{COPY[0]} row {COPY[1]}: redelivered copy of {ORIGINAL[0]} row 0" in text


def test_a_delayed_batch_not_yet_released_is_pending_not_lost(tmp_path):
    code, text = _a_careless_consumer(tmp_path)
    assert "  1 delayed batch not released yet: pending, not lost" in text, text
    assert "vanished" not in text, text


def test_the_json_carries_each_arrival_finding(tmp_path):
    code, text = _a_careless_consumer(tmp_path, "--json")
    doc = json.loads(text)
    events = doc["streams"]["events"]
    assert code == 1 and doc["passed"] is False and doc["verdict"].startswith("FAIL: ")
    assert (events["late_rejected"], events["drift_rejected"], events["drift_from"]) == (
        1,
        2,
        DRIFT,
    )
    assert events["false_alarms"] == 3  # late and drifted rejections are false alarms
    assert events["by_defect"]["redelivered"]["escaped"] == 1
    assert (events["held_batches"], events["pending_batches"], events["lost"]) == (1, 2, 0)


def test_past_the_release_batch_a_missing_delayed_batch_is_lost(tmp_path):
    kept = _all(B[1], B[4], B[5]) + [(B[2], 0), (B[2], 2)]
    code, text = _grade(tmp_path, kept, [], "--json")
    events = json.loads(text)["streams"]["events"]
    assert (events["held_batches"], events["lost_clean"], events["lost"]) == (0, 2, 2), text
    assert code == 1


def test_a_redelivered_copy_whose_original_is_held_back_is_pending(tmp_path):
    """The copy's original lies in the delayed batch: keeping the copy is right until then."""
    truth = _truth(tmp_path)
    ledger = pq.read_table(_arrivals(tmp_path)).to_pylist()
    for row in ledger:
        if row["condition"] == "redelivered":
            row["original_batch_id"], row["original_row_no"] = HELD, 0
    pq.write_table(pa.Table.from_pylist(ledger), tmp_path / "arrivals.parquet")
    paths = _output(tmp_path, _all(B[1], B[2], B[4]), [])
    args = ["--arrivals", str(tmp_path / "arrivals.parquet"), "--json"]
    result = CliRunner().invoke(main, ["grade", "--truth", truth, *paths, *args])
    events = json.loads(result.output)["streams"]["events"]
    copies = events["by_defect"]["redelivered"]
    assert (copies["escaped"], copies["pending"]) == (0, 1), result.output
    assert events["pending_batches"] == 2  # B[3] and B[5]: B[2] is reached, whole but the copy


def test_a_consumer_that_honours_every_arrival_condition_passes(tmp_path):
    """Keeps late and drifted data, drops the copy, has not seen the held batch yet."""
    kept = [k for k in _all(B[1], B[2], B[4]) if k != COPY]
    code, text = _grade(tmp_path, kept, [])
    assert code == 0, text
    assert text.splitlines()[0].startswith("PASS"), text
    assert "1 delayed batch not released yet: pending, not lost" in text


def test_without_the_ledger_the_late_record_is_a_plain_false_alarm(tmp_path):
    truth = _truth(tmp_path)
    paths = _output(tmp_path, [k for k in _all(B[1]) if k != LATE], [LATE])
    result = CliRunner().invoke(main, ["grade", "--truth", truth, *paths, "--json"])
    events = json.loads(result.output)["streams"]["events"]
    assert (events["false_alarms"], events["late_rejected"]) == (1, 0)


def test_the_combined_verdict_names_what_failed():
    assert overall([], True) == "PASS: filter and gold"
    assert overall(["recall 0.5 < 1"], False).startswith("FAIL: filter and gold")
    assert overall([], False).startswith("FAIL: gold (")


def test_follow_watches_the_arrival_findings(tmp_path):
    code, text = _a_careless_consumer(tmp_path, "--follow", "--rounds", "1")
    assert "events rejected late data: 1" in text, text
    assert f"events rejected the new schema from batch {DRIFT}: 2" in text, text
    assert "events held (delayed) batches: 1" in text, text
