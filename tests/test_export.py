"""`emugen export` from a real store (SQLite file and PostgreSQL), and grading its own output."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import func, select

from emugen.cli import main
from emugen.db.models import BronzeRecord, InjectedDefect
from emugen.pipeline.runner import run_pipeline
from tests.conftest import SIMULATED, make_settings

DIRTY = {"quality": {"rate": 0.15}}


@pytest.fixture
def store(engine, database_url, tmp_path) -> Path:
    """A store with 3 batches of each stream at a 15 % defect rate; its config file."""
    run_pipeline(engine, make_settings(companies=DIRTY, events=DIRTY), 3, size=120)
    config = tmp_path / "emugen.yaml"
    config.write_text(yaml.safe_dump({"database_url": database_url, "clock": SIMULATED}))
    return config


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_grading_emugens_own_exported_silver_and_quarantine_scores_100_percent(
    store, tmp_path, engine
):
    out = tmp_path / "out"
    for stream in ("companies", "events"):
        code, text = _cli(
            "export",
            "silver",
            "--stream",
            stream,
            "--out",
            str(out / f"silver_{stream}.parquet"),
            "--config",
            str(store),
        )
        assert code == 0, text
    assert (
        _cli(
            "export",
            "quarantine",
            "--format",
            "jsonl",
            "--out",
            str(out / "q.jsonl"),
            "--config",
            str(store),
        )[0]
        == 0
    )
    assert (
        _cli(
            "export",
            "truth",
            "--format",
            "csv",
            "--out",
            str(out / "truth.csv"),
            "--config",
            str(store),
        )[0]
        == 0
    )
    kept, rejected = str(out / "silver_*.parquet"), str(out / "q.jsonl")
    for truth in (["--truth", str(out / "truth.csv")], ["--config", str(store)]):
        code, text = _cli("grade", "--kept", kept, "--rejected", rejected, "--json", *truth)
        assert code == 0, text
        grade = json.loads(text)
        assert grade["recall"] == 1.0 and grade["precision"] == 1.0
        with engine.connect() as conn:
            injected = conn.scalar(select(func.count()).select_from(InjectedDefect))
        assert injected > 20  # a grade of nothing would pass too: make sure it graded something
        assert (
            sum(d["caught"] for s in grade["streams"].values() for d in s["by_defect"].values())
            == injected
        )


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_bronze_exports_every_row_with_its_raw_text_in_each_format(store, tmp_path, engine, fmt):
    out = tmp_path / f"bronze.{fmt}"
    code, text = _cli(
        "export", "bronze", "--format", fmt, "--out", str(out), "--config", str(store)
    )
    assert code == 0, text
    reader = {"parquet": "read_parquet", "jsonl": "read_json", "csv": "read_csv"}[fmt]
    rows = duckdb.sql(
        f"SELECT batch_id, row_no, payload FROM {reader}('{out}') ORDER BY batch_id, row_no"
    ).fetchall()
    with engine.connect() as conn:
        stored = [
            tuple(r)
            for r in conn.execute(
                select(BronzeRecord.batch_id, BronzeRecord.row_no, BronzeRecord.payload).order_by(
                    BronzeRecord.batch_id, BronzeRecord.row_no
                )
            )
        ]
    assert rows == stored


def test_the_truth_export_numbers_each_ids_occurrences(store, tmp_path):
    out = tmp_path / "truth.parquet"
    assert _cli("export", "truth", "--out", str(out), "--config", str(store))[0] == 0
    copies = duckdb.sql(
        f"SELECT defect, occurrence FROM read_parquet('{out}') WHERE defect = 'duplicate'"
    ).fetchall()
    assert copies and all(occurrence >= 2 for _, occurrence in copies)
    firsts = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{out}') WHERE defect IS NULL AND occurrence <> 1"
    ).fetchall()[0][0]
    assert firsts == 0


def test_since_and_until_select_batches_by_scheduled_time(store, tmp_path):
    everything, some = tmp_path / "all.jsonl", tmp_path / "some.jsonl"
    _cli("export", "bronze", "--format", "jsonl", "--out", str(everything), "--config", str(store))
    stamps = sorted({json.loads(line)["scheduled_at"] for line in everything.open()})
    code, text = _cli(
        "export",
        "bronze",
        "--format",
        "jsonl",
        "--since",
        stamps[1],
        "--until",
        stamps[-1],
        "--out",
        str(some),
        "--config",
        str(store),
    )
    assert code == 0, text
    kept = {json.loads(line)["scheduled_at"] for line in some.open()}
    assert kept == set(stamps[1:-1])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["platinum"], "'platinum' is not allowed; use one of bronze, silver"),
        (["bronze", "--format", "xml"], "--format 'xml' is not allowed"),
        (["bronze", "--stream", "trucks"], "--stream 'trucks' is not a stream"),
        (["bronze", "--since", "yesterday"], "--since 'yesterday' is not an ISO-8601 time"),
        (["bronze", "--since", "2026-01-02", "--until", "2026-01-01"], "is not before --until"),
        (["silver"], "silver has one table per stream: add --stream"),
    ],
)
def test_a_bad_export_request_is_one_line_and_exit_2(tmp_path, args, needle):
    config = tmp_path / "emugen.yaml"
    config.write_text(yaml.safe_dump({"database_url": f"sqlite:///{tmp_path / 'x.db'}"}))
    code, text = _cli(
        "export", *args, "--out", str(tmp_path / "o.parquet"), "--config", str(config)
    )
    assert code == 2 and needle in text and len(text.strip().splitlines()) == 1, text
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize(
    ("stream", "table"), [("events", "gold_company_window"), ("companies", "gold_region_window")]
)
def test_gold_exports_each_window_table_whole(store, tmp_path, engine, stream, table):
    out = tmp_path / f"{table}.csv"
    code, text = _cli(
        "export",
        "gold",
        "--stream",
        stream,
        "--format",
        "csv",
        "--out",
        str(out),
        "--config",
        str(store),
    )
    assert code == 0, text
    with engine.connect() as conn:
        from sqlalchemy import text as sql

        stored = conn.execute(sql(f"SELECT count(*) FROM {table}")).scalar()
    assert stored > 0
    assert duckdb.sql(f"SELECT count(*) FROM read_csv('{out}')").fetchall()[0][0] == stored
