"""`emugen grade` on hand-made truth and consumer outputs: every class, both matching modes."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from emugen.cli import main
from emugen.grade.grader import Job, run
from emugen.grade.inputs import Source

B1, B2 = "events-000000001", "events-000000002"


def _event(eid: str | None, event_type: str = "delivered") -> str:
    record = {
        "event_id": eid,
        "company_id": "c1",
        "driver_id": "d1",
        "truck_id": "t1",
        "event_type": event_type,
        "event_timestamp": "2026-01-01T00:00:01.000Z",
    }
    if eid is None:
        del record["event_id"]
    return json.dumps(record)


# (batch, row, natural id, defect, payload): one of every fate the grader must tell apart
TRUTH = [
    (B1, 0, "A", None, _event("A")),
    (B1, 1, "B", None, _event("B")),
    (B1, 2, "C", "invalid_enum", _event("C", "teleported")),
    (B1, 3, "A", "duplicate", _event("A")),  # the copy of row 0, landed after it
    (B1, 4, None, "missing_field", _event(None)),
    (B1, 5, "D", None, _event("D")),
    (B1, 6, "G", None, _event("G")),
    (B2, 0, "E", None, _event("E")),  # batch 2: the consumer has not reached it yet
    (B2, 1, "F", "null_value", _event("F")),
]


@pytest.fixture
def truth_file(tmp_path: Path) -> str:
    rows = [
        {
            "batch_id": b,
            "stream": "events",
            "row_no": r,
            "natural_id": i,
            "defect": d,
            "field": "event_type" if d == "invalid_enum" else None,
            "original": None,
            "injected": None,
            "expected_reason": d,
            "payload": p,
        }
        for b, r, i, d, p in TRUTH
    ]
    path = tmp_path / "truth.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _grade(truth: str, kept: str, rejected: str | None, **options) -> dict:
    job = Job(
        Source("kept", kept),
        Source("rejected", rejected) if rejected else None,
        truth_path=truth,
        examples=10,
        **options,
    )
    return run(job).as_dict()


def test_lineage_grading_tells_escaped_lost_extra_duplicated_false_alarm_and_pending(
    tmp_path, truth_file
):
    kept = _jsonl(
        tmp_path / "kept.jsonl",
        [
            {"batch_id": B1, "row_no": 0},
            {"batch_id": B1, "row_no": 1},
            {"batch_id": B1, "row_no": 2},  # invalid enum kept: escaped
            {"batch_id": B1, "row_no": 1},  # the consumer wrote row 1 twice
            {"batch_id": B1, "row_no": 99},  # a row the truth never had
        ],
    )
    rejected = _jsonl(
        tmp_path / "rejected.jsonl",
        [
            {"batch_id": B1, "row_no": 3, "reason": "dup"},
            {"batch_id": B1, "row_no": 4},
            {"batch_id": B1, "row_no": 6},  # a clean record rejected: false alarm
        ],
    )  # row 5 is in neither: lost
    g = _grade(truth_file, kept, rejected)
    s = g["streams"]["events"]
    assert g["match"] == "lineage"
    assert s["by_defect"]["invalid_enum"]["escaped"] == 1
    assert s["by_defect"]["duplicate"]["caught"] == 1
    assert s["by_defect"]["missing_field"]["caught"] == 1
    assert s["by_defect"]["null_value"]["pending"] == 1
    assert (s["kept"], s["lost_clean"], s["false_alarms"]) == (2, 1, 1)
    assert (s["extra"], s["duplicated"], s["pending_batches"]) == (1, 1, 1)
    assert s["last_batch"] == B1
    assert g["recall"] == pytest.approx(2 / 3)
    assert g["precision"] == pytest.approx(2 / 3)
    misses = {(e["miss"], e["row_no"]) for e in g["examples"]}
    assert misses == {("escaped", 2), ("lost", 5), ("false_alarm", 6)}
    escaped = next(e for e in g["examples"] if e["miss"] == "escaped")
    assert "teleported" in escaped["payload"] and escaped["defect"] == "invalid_enum"


def test_id_grading_matches_by_occurrence_and_reports_what_it_cannot_place(tmp_path, truth_file):
    kept = _jsonl(
        tmp_path / "kept.jsonl",
        [
            {"event_id": "A"},
            {"event_id": "B"},
            {"event_id": "C"},
            {"event_id": "B"},  # B twice, the truth has it once: duplicated
            {"event_id": "X"},  # unknown id: extra
        ],
    )
    rejected = _jsonl(
        tmp_path / "rejected.jsonl",
        [
            {"payload": _event("A")},  # A's second occurrence: the injected copy, caught
            {"payload": _event(None)},  # the record whose id the defect removed
            {"payload": "{not json"},
            {"payload": _event("G")},
        ],
    )
    g = _grade(truth_file, kept, rejected)
    s = g["streams"]["events"]
    assert g["match"] == "id"
    assert s["by_defect"]["invalid_enum"]["escaped"] == 1
    assert s["by_defect"]["duplicate"]["caught"] == 1
    assert s["by_defect"]["missing_field"]["unmatched"] == 1
    assert s["by_defect"]["null_value"]["pending"] == 1
    assert (s["kept"], s["lost_clean"], s["false_alarms"]) == (2, 1, 1)
    assert (s["extra"], s["duplicated"], s["pending_batches"]) == (1, 1, 1)
    # one event without an id, and one line that is not JSON (no stream either)
    assert s["no_id"] == 1 and g["streams"]["unknown"]["no_id"] == 1


def test_a_silently_dropped_copy_counts_as_caught_only_when_the_user_says_dedupe_drops(
    tmp_path, truth_file
):
    kept = _jsonl(tmp_path / "kept.jsonl", [{"batch_id": B1, "row_no": r} for r in (0, 1, 5, 6)])
    rejected = _jsonl(tmp_path / "rejected.jsonl", [{"batch_id": B1, "row_no": r} for r in (2, 4)])
    quarantined = _grade(truth_file, kept, rejected)["streams"]["events"]["by_defect"]
    dropped = _grade(truth_file, kept, rejected, duplicates="dropped")
    assert quarantined["duplicate"]["lost"] == 1
    assert dropped["streams"]["events"]["by_defect"]["duplicate"]["caught"] == 1
    assert dropped["recall"] == 1.0 and dropped["precision"] == 1.0


def test_keeping_the_copy_and_dropping_the_original_loses_the_original(tmp_path, truth_file):
    kept = _jsonl(tmp_path / "kept.jsonl", [{"batch_id": B1, "row_no": r} for r in (1, 3, 5, 6)])
    rejected = _jsonl(tmp_path / "rejected.jsonl", [{"batch_id": B1, "row_no": r} for r in (2, 4)])
    s = _grade(truth_file, kept, rejected, duplicates="dropped")["streams"]["events"]
    assert s["by_defect"]["duplicate"]["escaped"] == 1
    assert s["lost_clean"] == 1


def test_no_pending_counts_unreached_batches_as_misses(tmp_path, truth_file):
    kept = _jsonl(tmp_path / "kept.jsonl", [{"batch_id": B1, "row_no": 0}])
    s = _grade(truth_file, kept, None, pending=False)["streams"]["events"]
    assert s["by_defect"]["null_value"]["lost"] == 1 and s["pending_batches"] == 0


def test_file_name_and_line_are_lineage_too(tmp_path, truth_file):
    kept = _jsonl(
        tmp_path / "kept.jsonl",
        [
            {"source_file": f"s3://lz/events/date=2026-01-01/hour=00/{B1}.jsonl", "line": n}
            for n in (1, 2, 6, 7)
        ],
    )
    rejected = _jsonl(
        tmp_path / "rejected.jsonl",
        [{"source_file": f"/lz/{B1}.jsonl", "line": n} for n in (3, 4, 5)],
    )
    g = _grade(truth_file, kept, rejected)
    assert g["match"] == "lineage" and g["recall"] == 1.0 and g["precision"] == 1.0


def test_the_cli_gate_exits_1_below_the_minimum_and_0_above(tmp_path, truth_file):
    kept = _jsonl(tmp_path / "kept.jsonl", [{"batch_id": B1, "row_no": r} for r in (0, 1, 2, 5, 6)])
    rejected = _jsonl(tmp_path / "rejected.jsonl", [{"batch_id": B1, "row_no": r} for r in (3, 4)])
    runner = CliRunner()
    args = ["grade", "--truth", truth_file, "--kept", kept, "--rejected", rejected]
    failed = runner.invoke(main, [*args, "--json"])
    assert failed.exit_code == 1, failed.output
    body = json.loads(failed.output)
    assert body["passed"] is False and "recall 0.6667 < 1" in body["failures"][0]
    passed = runner.invoke(main, [*args, "--min-recall", "0.6"])
    assert passed.exit_code == 0, passed.output
    assert "invalid_enum" in passed.output and "PASS" in passed.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--kept", "{tmp}/nowhere/*.parquet"], "kept input {tmp}/nowhere/*.parquet: no such file"),
        (
            ["--kept", "{tmp}/bad.parquet"],
            "kept input {tmp}/bad.parquet: cannot read it as parquet",
        ),
        (["--kept", "{tmp}/noids.csv"], "kept input {tmp}/noids.csv: no ids"),
        (["--kept", "{tmp}/noids.csv", "--match", "lineage"], "no lineage columns"),
        (["--kept", "{tmp}/bad.txt"], "expected one of .parquet"),
        (["--kept", "sqlite:///{tmp}/x.db"], "give the query too"),
        (
            ["--kept", "sqlite:///{tmp}/x.db", "--kept-query", "SELECT * FROM nope"],
            "the query failed",
        ),
        (
            ["--kept", "postgresql://u@h:zz/db", "--kept-query", "SELECT 1"],
            "kept input postgresql://u@h:zz/db is not a SQLAlchemy URL",
        ),
        (
            ["--kept", "{tmp}/ok.jsonl", "--truth", "{tmp}/noids.csv"],
            "truth {tmp}/noids.csv: no column batch_id",
        ),
    ],
)
def test_bad_grading_input_is_one_line_naming_the_input_and_exit_2(
    tmp_path, truth_file, args, needle
):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    (tmp_path / "bad.txt").write_text("hello")
    (tmp_path / "noids.csv").write_text("name,amount\nx,1\n")
    _jsonl(tmp_path / "ok.jsonl", [{"batch_id": B1, "row_no": 0}])
    args = [a.format(tmp=tmp_path) for a in args]
    if "--truth" not in args:
        args += ["--truth", truth_file]
    result = CliRunner().invoke(main, ["grade", *args])
    assert result.exit_code == 2, result.output
    assert needle.format(tmp=tmp_path) in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert isinstance(result.exception, SystemExit)  # not an uncaught error


def test_follow_prints_only_what_changed_as_the_consumer_reaches_new_batches(
    tmp_path, truth_file, monkeypatch
):
    kept = tmp_path / "kept.jsonl"
    _jsonl(kept, [{"batch_id": B1, "row_no": r} for r in (0, 1, 5, 6)])
    rejected = _jsonl(
        tmp_path / "rejected.jsonl", [{"batch_id": B1, "row_no": r} for r in (2, 3, 4)]
    )
    rounds = iter(
        [
            # between rounds 1 and 2 the consumer reaches batch 2 and keeps its null_value record
            lambda: _jsonl(
                kept,
                [
                    {"batch_id": b, "row_no": r}
                    for b, r in ((B1, 0), (B1, 1), (B1, 5), (B1, 6), (B2, 0), (B2, 1))
                ],
            ),
            lambda: None,  # nothing changes between rounds 2 and 3
        ]
    )
    monkeypatch.setattr("emugen.grade.cli.time.sleep", lambda _s: next(rounds)())
    result = CliRunner().invoke(
        main,
        [
            "grade",
            "--truth",
            truth_file,
            "--kept",
            str(kept),
            "--rejected",
            rejected,
            "--follow",
            "--rounds",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = [line.split(" ", 1)[1] for line in result.output.splitlines()]
    first = lines.index("events null_value: caught 0/0, escaped 0, lost 0, pending 1")
    changed = lines[first + 1 :]
    assert "events pending batches: 1 -> 0" in changed
    assert (
        "events null_value: caught 0/0, escaped 0, lost 0, pending 1 -> "
        "caught 0/1, escaped 1, lost 0, pending 0"
    ) in changed
    assert "total recall: 100.00 % -> 75.00 %" in changed
    assert not any("invalid_enum" in line for line in changed)  # unchanged: not printed again
    assert len(changed) == 4  # total recall, last batch, pending batches, null_value


def test_a_consumer_table_in_a_database_is_graded_through_a_url_and_query(tmp_path, truth_file):
    import sqlite3

    db = tmp_path / "consumer.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE silver (batch_id TEXT, row_no INTEGER, note TEXT)")
        con.executemany("INSERT INTO silver VALUES (?, ?, 'x')", [(B1, r) for r in (0, 1, 5, 6)])
        con.execute("CREATE TABLE dead_letters (batch_id TEXT, row_no INTEGER)")
        con.executemany("INSERT INTO dead_letters VALUES (?, ?)", [(B1, r) for r in (2, 3, 4)])
    url = f"sqlite:///{db}"
    job = Job(
        Source("kept", url, "SELECT batch_id, row_no FROM silver"),
        Source("rejected", url, "SELECT * FROM dead_letters"),
        truth_path=truth_file,
    )
    g = run(job).as_dict()
    assert g["match"] == "lineage" and g["recall"] == 1.0 and g["precision"] == 1.0
    assert g["streams"]["events"]["pending_batches"] == 1


def test_sparks_file_metadata_column_with_a_line_number_is_lineage(tmp_path, truth_file):
    def side(lines: tuple[int, ...]) -> str:
        path = tmp_path / f"side{lines[0]}.parquet"
        pq.write_table(
            pa.table(
                {
                    "_metadata": [{"file_name": f"{B1}.jsonl", "file_size": 1} for _ in lines],
                    "line": list(lines),
                }
            ),
            path,
        )
        return str(path)

    g = _grade(truth_file, side((1, 2, 6, 7)), side((3, 4, 5)))
    assert g["match"] == "lineage" and g["recall"] == 1.0 and g["precision"] == 1.0
