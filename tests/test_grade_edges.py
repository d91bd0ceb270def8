"""`emugen grade` at its edges: symlink loops, values that cannot be cast, inputs that vanish
under `--follow`, both streams in one glob, clean rows lost, and a truth from another run.

Each case was reproduced against real files; each test checks the message, the exit code and
that grading wrote nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from emugen.cli import main
from emugen.grade.summary import summary_rows

B1 = "events-000000001"
C1 = "companies-000000001"


def _event(eid: str) -> str:
    return json.dumps(
        {
            "event_id": eid,
            "company_id": "c1",
            "driver_id": "d1",
            "truck_id": "t1",
            "event_type": "delivered",
            "event_timestamp": "2026-01-01T00:00:01.000Z",
        }
    )


def _truth(path: Path, rows: list[tuple[str, int, str | None, str | None]]) -> str:
    """A truth file: (batch_id, row_no, natural id, defect) per record."""
    pq.write_table(
        pa.Table.from_pylist(
            [
                {
                    "batch_id": b,
                    "stream": b.split("-")[0],
                    "row_no": r,
                    "natural_id": i,
                    "defect": d,
                    "field": None,
                    "original": None,
                    "injected": None,
                    "expected_reason": d,
                    "payload": _event(i or ""),
                }
                for b, r, i, d in rows
            ]
        ),
        path,
    )
    return str(path)


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under root (links not followed) with its size and mtime: 'nothing written'."""
    out = {}
    for folder, dirs, names in os.walk(root, followlinks=False):
        for name in dirs + names:
            st = os.lstat(os.path.join(folder, name))
            out[os.path.join(folder, name)] = (st.st_size, st.st_mtime_ns)
    return out


def _clean_truth(tmp_path: Path, n: int = 20) -> str:
    return _truth(tmp_path / "truth.parquet", [(B1, r, f"E{r}", None) for r in range(n)])


def _one_line(result, code: int) -> str:  # noqa: ANN001 - click's Result
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit)  # not an uncaught error
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("emugen: ")
    return lines[0].removeprefix("emugen: ")


def test_a_glob_through_a_symlink_loop_reads_each_file_once(tmp_path):
    truth = _clean_truth(tmp_path)
    out = tmp_path / "out"
    _jsonl(out / "part" / "kept.jsonl", [{"batch_id": B1, "row_no": r} for r in range(20)])
    (out / "part" / "loop").symlink_to(out, target_is_directory=True)  # out/part/loop -> out
    (out / "again.jsonl").symlink_to(out / "part" / "kept.jsonl")  # the same file, two names
    before = _tree(tmp_path)
    result = CliRunner().invoke(
        main, ["grade", "--truth", truth, "--kept", f"{out}/**/*.jsonl", "--json"]
    )
    assert result.exit_code == 0, result.output
    events = json.loads(result.output)["streams"]["events"]
    assert (events["kept"], events["duplicated"], events["extra"]) == (20, 0, 0)
    assert _tree(tmp_path) == before


def test_a_glob_through_two_symlink_loops_ends(tmp_path):
    """Two loops made `glob` (and so `grade`) walk 2^40 paths: it never finished."""
    truth = _clean_truth(tmp_path)
    out = tmp_path / "out"
    _jsonl(out / "a" / "kept.jsonl", [{"batch_id": B1, "row_no": r} for r in range(20)])
    (out / "a" / "up").symlink_to(out, target_is_directory=True)
    (out / "a" / "self").symlink_to(out / "a", target_is_directory=True)
    before = _tree(tmp_path)
    done = subprocess.run(  # a real process: a hang is a failure, not a stuck test run
        [sys.executable, "-m", "emugen", "grade", "--truth", truth, "--kept", f"{out}/**/*.jsonl"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("PASS"), done.stdout
    assert summary_rows(done.stdout)["events"]["duplicated"] == "0", done.stdout
    assert _tree(tmp_path) == before


@pytest.mark.parametrize(
    ("bad", "line"), [('"a"', 2), ("1.5e300", 3), ("1e400", 3), ('"x"', 30_001)]
)
def test_a_row_no_that_cannot_be_cast_is_exit_2_naming_file_line_and_column(tmp_path, bad, line):
    truth = _clean_truth(tmp_path)
    kept = tmp_path / "kept.jsonl"
    rows = [json.dumps({"batch_id": B1, "row_no": r % 20}) for r in range(line - 1)]
    rows.insert(line - 1, '{"batch_id": "%s", "row_no": %s}' % (B1, bad))  # noqa: UP031
    kept.write_text("\n".join(rows) + "\n")
    before = _tree(tmp_path)
    result = CliRunner().invoke(main, ["grade", "--truth", truth, "--kept", str(kept)])
    message = _one_line(result, 2)
    assert message.startswith(f"kept input {kept}: line {line}, column row_no: ")
    assert "is not a whole number" in message
    assert _tree(tmp_path) == before


def test_a_truth_row_no_that_cannot_be_cast_names_the_truth_file(tmp_path):
    truth = _jsonl(
        tmp_path / "truth.jsonl",
        [
            {"batch_id": B1, "stream": "events", "row_no": r, "natural_id": f"E{r}", "defect": None}
            for r in range(3)
        ]
        + [
            {
                "batch_id": B1,
                "stream": "events",
                "row_no": "three",
                "natural_id": "E3",
                "defect": None,
            }
        ],
    )
    kept = _jsonl(tmp_path / "kept.jsonl", [{"batch_id": B1, "row_no": 0}])
    result = CliRunner().invoke(main, ["grade", "--truth", truth, "--kept", kept])
    assert _one_line(result, 2).startswith(f"truth {truth}: line 4, column row_no: 'three'")


@pytest.mark.parametrize(
    ("column", "needle"),
    [
        ("TEXT", "row 3 of the query, column row_no: 'zz' is not a whole number"),
        ("", "row 3 of the query, column row_no: 'zz' is not int like the rows before it"),
    ],
)
def test_a_row_no_from_a_query_that_cannot_be_cast_names_its_row_and_column(
    tmp_path, column, needle
):
    import sqlite3

    truth = _clean_truth(tmp_path)
    db = tmp_path / "consumer.db"
    with sqlite3.connect(db) as con:  # SQLite keeps any type in any column
        con.execute(f"CREATE TABLE silver (batch_id TEXT, row_no {column})")
        con.executemany(
            "INSERT INTO silver VALUES (?, ?)",
            [(B1, "0" if column else 0), (B1, "1" if column else 1), (B1, "zz")],
        )
    con.close()
    before = _tree(tmp_path)
    result = CliRunner().invoke(
        main,
        [
            "grade",
            "--truth",
            truth,
            "--kept",
            f"sqlite:///{db}",
            "--kept-query",
            "SELECT * FROM silver",
        ],
    )
    assert _one_line(result, 2).startswith(f"kept input sqlite:///{db}: {needle}")
    assert _tree(tmp_path) == before


def test_follow_reports_a_deleted_input_folder_each_round_and_resumes_when_it_returns(
    tmp_path, monkeypatch
):
    truth = _clean_truth(tmp_path)
    out = tmp_path / "out"
    _jsonl(out / "kept.jsonl", [{"batch_id": B1, "row_no": r} for r in range(20)])
    actions = iter(
        [
            lambda: shutil.rmtree(out),  # after round 1: the folder is deleted
            lambda: None,  # still gone in round 3
            lambda: _jsonl(
                out / "kept.jsonl", [{"batch_id": B1, "row_no": r} for r in range(19)]
            ),  # back, one row short
        ]
    )
    monkeypatch.setattr("emugen.grade.cli.time.sleep", lambda _s: next(actions)())
    result = CliRunner().invoke(
        main, ["grade", "--truth", truth, "--kept", str(out), "--follow", "--rounds", "4"]
    )
    assert result.exit_code == 0, result.output
    lines = [line.split(" ", 1)[1] for line in result.output.splitlines()]
    missing = [line for line in lines if "no such file" in line]
    assert (
        missing
        == [
            f"kept input {out}: no such file (or the glob matches nothing); give a "
            "Parquet, JSON Lines or CSV path or glob"
        ]
        * 2
    )
    assert lines[-1] == "events clean lost: 0 -> 1"  # round 4: graded again, only the change


def _both_streams(tmp_path: Path) -> tuple[str, str, str]:
    truth = _truth(
        tmp_path / "truth.parquet",
        [
            (C1, 0, "C1", None),
            (C1, 1, "C2", None),
            (B1, 0, "E1", None),
            (B1, 1, "E2", None),
            (B1, 2, "E3", "invalid_enum"),
        ],
    )
    out = tmp_path / "out"
    _jsonl(
        out / "silver_companies.jsonl",
        [{"company_id": "C1", "company_name": "a"}, {"company_id": "C2", "company_name": "b"}],
    )
    _jsonl(
        out / "silver_events.jsonl",
        [
            {"event_id": e, "company_id": "C1", "driver_id": "d1", "event_type": "delivered"}
            for e in ("E1", "E2")
        ],
    )
    rejected = _jsonl(tmp_path / "rejected.jsonl", [{"payload": _event("E3")}])
    return truth, f"{out}/silver_*.jsonl", rejected


def test_match_id_over_one_glob_of_both_streams_routes_rows_by_their_own_id(tmp_path):
    truth, kept, rejected = _both_streams(tmp_path)
    before = _tree(tmp_path)
    result = CliRunner().invoke(
        main,
        [
            "grade",
            "--truth",
            truth,
            "--kept",
            kept,
            "--rejected",
            rejected,
            "--match",
            "id",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    streams = json.loads(result.output)["streams"]
    assert set(streams) == {"companies", "events"}
    companies, events = streams["companies"], streams["events"]
    assert (companies["kept"], companies["pending_records"], companies["no_id"]) == (2, 0, 0)
    assert (events["kept"], events["no_id"], events["by_defect"]["invalid_enum"]["caught"]) == (
        2,
        0,
        1,
    )
    assert _tree(tmp_path) == before


def test_one_stream_asked_of_an_input_holding_both_is_refused(tmp_path):
    truth, kept, rejected = _both_streams(tmp_path)
    result = CliRunner().invoke(
        main,
        [
            "grade",
            "--truth",
            truth,
            "--kept",
            kept,
            "--rejected",
            rejected,
            "--match",
            "id",
            "--stream",
            "companies",
        ],
    )
    assert _one_line(result, 2).startswith(
        f"kept input {kept}: has event_id, so it holds events, but --stream companies"
    )


def test_clean_rows_lost_fail_the_gate_unless_max_lost_allows_them(tmp_path):
    truth = _clean_truth(tmp_path)
    kept = _jsonl(tmp_path / "kept.jsonl", [{"batch_id": B1, "row_no": r} for r in (0, 1)])
    before = _tree(tmp_path)
    args = ["grade", "--truth", truth, "--kept", kept]
    failed = CliRunner().invoke(main, args)
    assert failed.exit_code == 1, failed.output
    assert "clean lost 18" in failed.output
    assert failed.output.splitlines()[0] == "FAIL: clean lost 18 > 0 (--max-lost)"
    allowed = CliRunner().invoke(main, [*args, "--max-lost", "18", "--json"])
    assert allowed.exit_code == 0, allowed.output
    body = json.loads(allowed.output)
    assert body["passed"] is True and body["lost_clean"] == 18
    assert _tree(tmp_path) == before


def test_a_truth_from_another_run_is_refused_with_how_many_keys_it_holds(tmp_path):
    truth = _truth(
        tmp_path / "truth.parquet", [(B1, r, f"other-seed-{r}", None) for r in range(20)]
    )
    kept = _jsonl(
        tmp_path / "kept.jsonl",
        [{"event_id": f"E{r}"} for r in range(18)] + [{"event_id": "other-seed-0"}],
    )
    before = _tree(tmp_path)
    result = CliRunner().invoke(main, ["grade", "--truth", truth, "--kept", kept])
    assert _one_line(result, 2) == (
        f"truth {truth}: this truth is not from the run that produced this output (1 of 19 "
        "keys found); grade against the store or an `emugen export truth` of the run that fed "
        "this pipeline"
    )
    assert _tree(tmp_path) == before


def test_a_truth_from_another_seed_is_refused_in_lineage_mode_by_the_ids_at_its_keys(tmp_path):
    """Another seed has the very same (batch_id, row_no) keys: only the ids tell them apart."""
    truth = _truth(
        tmp_path / "truth.parquet", [(B1, r, f"other-seed-{r}", None) for r in range(20)]
    )
    kept = _jsonl(
        tmp_path / "kept.jsonl",
        [{"batch_id": B1, "row_no": r, "event_id": f"E{r}"} for r in range(20)],
    )
    before = _tree(tmp_path)
    result = CliRunner().invoke(main, ["grade", "--truth", truth, "--kept", kept])
    assert _one_line(result, 2).startswith(
        f"truth {truth}: this truth is not from the run that produced this output (0 of 20 "
        "keys found)"
    )
    assert _tree(tmp_path) == before


def _seeded_store(folder: Path, seed: int) -> Path:
    import yaml

    from emugen.db.session import engine_for, init_db
    from emugen.pipeline.runner import run_pipeline
    from emugen.settings import load_settings
    from tests.fleet_helpers import write_config

    folder.mkdir()
    config = write_config(folder / "emugen.yaml", f"sqlite:///{folder / 'store.db'}")
    data = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**data, "seed": seed}))
    settings = load_settings(config, env=False)
    engine = engine_for(settings.database_url)
    init_db(engine)
    run_pipeline(engine, settings, 3)
    return config


@pytest.mark.parametrize("match", ["lineage", "id"])
def test_the_truth_of_a_run_with_another_seed_is_refused(tmp_path, match):
    ours, theirs = _seeded_store(tmp_path / "a", 7), _seeded_store(tmp_path / "b", 8)
    out = tmp_path / "out"
    for stream in ("companies", "events"):
        assert (
            CliRunner()
            .invoke(
                main,
                [
                    "export",
                    "silver",
                    "--stream",
                    stream,
                    "--out",
                    str(out / f"silver_{stream}.parquet"),
                    "--config",
                    str(ours),
                ],
            )
            .exit_code
            == 0
        )
    truth = str(tmp_path / "truth_b.parquet")
    assert (
        CliRunner()
        .invoke(main, ["export", "truth", "--out", truth, "--config", str(theirs)])
        .exit_code
        == 0
    )
    args = ["grade", "--kept", f"{out}/silver_*.parquet", "--match", match]
    assert CliRunner().invoke(main, [*args, "--config", str(ours)]).exit_code == 1  # graded
    before = _tree(tmp_path)
    message = _one_line(CliRunner().invoke(main, [*args, "--truth", truth]), 2)
    assert message.startswith(
        f"truth {truth}: this truth is not from the run that produced this output (0 of "
    )
    assert _tree(tmp_path) == before
