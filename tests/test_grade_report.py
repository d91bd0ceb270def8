"""The filter grade's report leads with its verdict: one summary row per stream, vanished rows
in one line, `n/a` explained, capped examples, and extra rows failing by default."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from emugen.cli import main
from emugen.grade.summary import summary_rows

B1, C1 = "events-000000001", "companies-000000001"


def _truth(folder: Path) -> str:
    rows = [
        {
            "batch_id": b,
            "stream": b.split("-")[0],
            "row_no": r,
            "natural_id": f"{b[0]}{r}",
            "defect": "invalid_enum" if r >= 8 else None,
            "payload": "{}",
        }
        for b in (B1, C1)
        for r in range(10)
    ]
    pq.write_table(pa.Table.from_pylist(rows), folder / "truth.parquet")
    return str(folder / "truth.parquet")


def _rows(folder: Path, name: str, keys: list[tuple[str, int]]) -> str:
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"batch_id": b, "row_no": r}) + "\n" for b, r in keys))
    return str(path)


def _grade(folder: Path, kept: list, rejected: list, *flags: str) -> tuple[int, str]:
    args = ["grade", "--truth", _truth(folder), "--kept", _rows(folder, "kept", kept)]
    if rejected:
        args += ["--rejected", _rows(folder, "rejected", rejected)]
    result = CliRunner().invoke(main, [*args, *flags])
    return result.exit_code, result.output


CLEAN = [(b, r) for b in (B1, C1) for r in range(8)]
DEFECTS = [(b, r) for b in (B1, C1) for r in (8, 9)]


def test_a_clean_grade_says_pass_first_then_one_summary_row_per_stream(tmp_path):
    code, text = _grade(tmp_path, CLEAN, DEFECTS)
    assert code == 0, text
    assert text.startswith("PASS: every gate met"), text
    rows = summary_rows(text)
    assert sorted(rows) == ["companies", "events"]
    assert rows["events"]["records"] == "10" and rows["events"]["recall"] == "100.00 %"
    # the summary comes before any stream's detail
    assert text.index("stream  ") < text.index("\nevents: 10 records")


def test_extra_rows_fail_by_default_and_are_shown_with_their_lineage(tmp_path):
    code, text = _grade(tmp_path, [*CLEAN, ("events-000000007", 3)], DEFECTS)
    assert code == 1, text
    assert text.splitlines()[0].startswith("FAIL: extra rows 1 > 0 (--max-extra)"), text
    assert summary_rows(text)["events"]["extra"] == "1"
    assert "  kept      events    events-000000007 row 3, id -" in text, text
    allowed, _ = _grade(tmp_path, [*CLEAN, ("events-000000007", 3)], DEFECTS, "--max-extra", "1")
    assert allowed == 0


def test_vanished_rows_are_one_line_with_their_counts(tmp_path):
    code, text = _grade(tmp_path, CLEAN[2:], DEFECTS[1:])
    assert code == 1
    # events rows 0 and 1 (clean) and row 8 (defective) were neither kept nor rejected
    assert "  vanished: 3 records neither kept nor rejected (2 clean, 1 with a defect)" in text


def test_precision_with_nothing_rejected_is_na_and_explained(tmp_path):
    code, text = _grade(tmp_path, CLEAN, [])
    assert summary_rows(text)["events"]["precision"] == "n/a", text
    assert "precision n/a: nothing rejected" in text
    assert "precision -" not in text and "recall -" not in text


def test_examples_are_capped_by_the_examples_option(tmp_path):
    code, text = _grade(tmp_path, CLEAN + DEFECTS, [], "--examples", "1")
    escaped = [line for line in text.splitlines() if line.startswith("  escaped ")]
    assert len(escaped) == 2, text  # one per stream (each has two escaped invalid_enum)
    code, text = _grade(tmp_path, CLEAN + DEFECTS, [], "--examples", "0")
    assert "first misses" not in text
    assert not [line for line in text.splitlines() if line.startswith("  escaped ")]
