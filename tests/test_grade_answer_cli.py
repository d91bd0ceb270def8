"""`emugen grade --gold` on a real store under arrival conditions (SQLite file and PostgreSQL):
emugen's own gold passes `exact`; a naive consumer fails with its redelivered events named;
bad input is one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import select

from emugen.cli import main
from emugen.db.ledger import ArrivalEntry
from emugen.pipeline.runner import run_pipeline
from tests.conftest import SIMULATED
from tests.test_arrival_pipeline import arriving_settings


@pytest.fixture
def store(engine, database_url, tmp_path) -> Path:
    """6 batches of each stream with late, out-of-order, redelivered, delayed and drifted
    events at a 15 % defect rate; its config file."""
    run_pipeline(engine, arriving_settings(), 6, size=60)
    config = tmp_path / "emugen.yaml"
    config.write_text(yaml.safe_dump({"database_url": database_url, "clock": SIMULATED}))
    return config


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _export(config: Path, kind: str, out: Path, stream: str | None = None) -> str:
    code, text = _cli(
        "export",
        kind,
        *(["--stream", stream] if stream else []),
        "--out",
        str(out),
        "--config",
        str(config),
    )
    assert code == 0, text
    return str(out)


def test_emugens_own_gold_passes_exact_for_both_gold_tables(store, tmp_path):
    for stream in ("events", "companies"):
        gold = _export(store, "gold", tmp_path / f"gold_{stream}.parquet", stream)
        code, text = _cli("grade", "--gold", gold, "--config", str(store), "--json")
        assert code == 0, text
        result = json.loads(text)["gold"]
        assert result["wrong"] == 0 and result["cells"] > 20, result["wrong_cells"][:3]
        assert result["table"] == ("company" if stream == "events" else "region")
        assert all(row["balanced"] for row in result["conservation"])
    assert sum(r["deduplicated"] for r in result["conservation"]) == 0  # companies: none


def test_filter_and_answer_are_graded_in_one_command(store, tmp_path):
    silver = [
        _export(store, "silver", tmp_path / f"silver_{s}.parquet", s)
        for s in ("companies", "events")
    ]
    rejected = _export(store, "quarantine", tmp_path / "q.parquet")
    gold = _export(store, "gold", tmp_path / "gold.parquet", "events")
    code, text = _cli(
        "grade",
        "--kept",
        str(tmp_path / "silver_*.parquet"),
        "--rejected",
        rejected,
        "--gold",
        gold,
        "--config",
        str(store),
    )
    assert code == 0, text
    # the overall verdict first, then each report under its own verdict
    first, second = text.splitlines()[:2]
    assert first == "PASS: filter and gold", text
    assert second.startswith("PASS: gold per company"), text
    assert "\nPASS: every gate met" in text and "recall" in text.lower(), text
    assert silver


NAIVE = """
WITH e AS (
  SELECT json_extract_string(payload, '$.company_id') AS company_id,
         json_extract_string(payload, '$.driver_id') AS driver_id,
         json_extract_string(payload, '$.event_type') AS event_type,
         time_bucket(INTERVAL 1 MINUTE,
                     json_extract_string(payload, '$.event_timestamp')::TIMESTAMPTZ) AS ws
  FROM read_parquet('{truth}')
  WHERE stream = 'events' AND (defect IS NULL OR defect = 'redelivered'))  -- copies counted
SELECT ws AS window_start, company_id, count(*) AS events,
       count(*) FILTER (WHERE event_type = 'start_driving') AS start_driving,
       count(*) FILTER (WHERE event_type = 'stopped_driving') AS stopped_driving,
       count(*) FILTER (WHERE event_type = 'delivered') AS delivered,
       count(DISTINCT driver_id) AS active_drivers
FROM e GROUP BY ALL
"""


def test_a_naive_consumer_that_keeps_redelivered_copies_fails_naming_them(store, tmp_path, engine):
    """The consumer checks each record but never de-duplicates across batches."""
    truth = _export(store, "truth", tmp_path / "truth.parquet")
    gold = tmp_path / "naive.parquet"
    duckdb.sql(f"COPY ({NAIVE.format(truth=truth)}) TO '{gold}' (FORMAT parquet)")
    code, text = _cli("grade", "--gold", str(gold), "--config", str(store), "--json")
    assert code == 1, text
    result = json.loads(text)["gold"]
    with engine.connect() as conn:
        copies = {
            (b, r)
            for b, r in conn.execute(
                select(ArrivalEntry.batch_id, ArrivalEntry.row_no).where(
                    ArrivalEntry.condition == "redelivered"
                )
            ).all()
        }
    named = {
        (e["batch_id"], e["row_no"])
        for cell in result["wrong_cells"]
        for c in cell["causes"]
        if c["cause"] == "redelivered_counted"
        for e in c["examples"]
    }
    assert result["by_cause"]["redelivered_counted"] > 0
    assert named and named <= copies
    # every wrong events cell is exactly its copies: the sum of the counts is every copy
    events_cells = [c for c in result["wrong_cells"] if c["metric"] == "events"]
    assert all([x["cause"] for x in c["causes"]] == ["redelivered_counted"] for c in events_cells)
    assert sum(c["causes"][0]["count"] for c in events_cells) == len(copies)
    code, text = _cli("grade", "--gold", str(gold), "--config", str(store))
    assert text.startswith("FAIL: gold per company") and "redelivered_counted" in text


def _bad(tmp_path: Path, store: Path, rows: list[dict], *flags: str) -> str:
    gold = tmp_path / "bad.jsonl"
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, text = _cli("grade", "--gold", str(gold), "--config", str(store), *flags)
    assert code == 2, text
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1, text
    return text


ROW = {
    "window_start": "2026-01-01T00:01:00Z",
    "company_id": "c1",
    "events": 1,
    "start_driving": 1,
    "stopped_driving": 0,
    "delivered": 0,
    "active_drivers": 1,
}


@pytest.mark.parametrize(
    ("rows", "flags", "names"),
    [
        ([{k: v for k, v in ROW.items() if k != "delivered"}], (), "delivered"),
        ([{**ROW, "events": "many"}], (), "'many'"),
        ([ROW], ("--policy", "eventually"), "eventually"),
        ([ROW], ("--policy", "watermark=soon"), "soon"),
        ([{**ROW, "window_start": "2026-01-01T00:01:30Z"}], (), "--window"),
        ([ROW], ("--window", "1h"), "3600-second window"),
        ([], (), "no rows"),
        (
            [{**ROW, "company_id": None, "cid": "c1"} | {"company_id": "c1"}],
            ("--columns", "x=y"),
            "'x=y'",
        ),
        ([ROW], ("--tolerance", "abs=-1"), "abs=-1"),
    ],
)
def test_bad_gold_input_is_one_line_naming_it_and_exit_2(store, tmp_path, rows, flags, names):
    if not rows:
        (tmp_path / "bad.jsonl").write_text("")
    text = (
        _bad(tmp_path, store, rows, *flags)
        if rows
        else _cli("grade", "--gold", str(tmp_path / "bad.jsonl"), "--config", str(store))[1]
    )
    assert names in text, text


def test_grade_without_kept_or_gold_says_what_to_give(store):
    code, text = _cli("grade", "--config", str(store))
    assert code == 2 and "--gold" in text and "--kept" in text


def test_json_of_filter_and_answer_is_one_document_with_gold_beside(store, tmp_path):
    for s in ("companies", "events"):
        _export(store, "silver", tmp_path / f"silver_{s}.parquet", s)
    rejected = _export(store, "quarantine", tmp_path / "q.parquet")
    gold = _export(store, "gold", tmp_path / "gold.parquet", "events")
    code, text = _cli(
        "grade",
        "--kept",
        str(tmp_path / "silver_*.parquet"),
        "--rejected",
        rejected,
        "--gold",
        gold,
        "--config",
        str(store),
        "--json",
    )
    assert code == 0, text
    document = json.loads(text)
    assert document["recall"] == 1.0 and document["gold"]["wrong"] == 0
    assert document["gold"]["verdict"] == "PASS" and document["gold"]["cells"] > 20


def test_follow_regrades_and_prints_a_line_when_the_counts_change(store, tmp_path):
    gold = _export(store, "gold", tmp_path / "gold.parquet", "events")
    code, text = _cli(
        "grade",
        "--gold",
        gold,
        "--config",
        str(store),
        "--follow",
        "--rounds",
        "2",
        "--every",
        "0.1",
    )
    assert code == 0, text
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "gold: 0 wrong of" in lines[0], text  # unchanged: one line


def test_gold_as_a_hive_partitioned_folder_and_as_a_duckdb_query_passes(store, tmp_path):
    gold = _export(store, "gold", tmp_path / "gold.parquet", "events")
    folder, db = tmp_path / "hive", tmp_path / "consumer.duckdb"
    con = duckdb.connect(str(db))
    con.execute(
        f"COPY (SELECT *, window_start_ms // 60000 % 2 AS half FROM '{gold}') TO "
        f"'{folder}' (FORMAT parquet, PARTITION_BY (half))"
    )
    con.execute(
        f"CREATE TABLE g AS SELECT window_start AS ws, company_id AS cid, events AS n, "
        f"* EXCLUDE (window_start, company_id, events, window_start_ms) FROM '{gold}'"
    )
    con.close()
    assert any("half=" in p.name for p in folder.iterdir())
    code, text = _cli("grade", "--gold", str(folder), "--config", str(store))
    assert code == 0 and text.startswith("PASS"), text
    code, text = _cli(
        "grade",
        "--gold",
        f"duckdb:///{db}",
        "--gold-query",
        "SELECT * FROM g",
        "--columns",
        "window_start=ws,company_id=cid,events=n",
        "--config",
        str(store),
    )
    assert code == 0 and text.startswith("PASS"), text


def test_a_window_start_that_is_not_a_time_is_named(store, tmp_path):
    text = _bad(tmp_path, store, [{**ROW, "window_start": "yesterday"}])
    assert "'yesterday'" in text and "window_start" in text


def test_a_filter_that_drops_redelivered_copies_passes_and_one_that_keeps_them_fails(
    store, tmp_path, engine
):
    """A copy from an earlier batch is not a lost record when a pipeline de-duplicates it away;
    kept, it is an escaped duplicate, named in the `redelivered` row of the filter's grade."""
    truth = _export(store, "truth", tmp_path / "truth.parquet")
    with engine.connect() as conn:
        copies = len(
            conn.execute(
                select(ArrivalEntry.batch_id).where(ArrivalEntry.condition == "redelivered")
            ).all()
        )
    assert copies > 0
    kept = "SELECT batch_id, row_no FROM read_parquet('{t}') WHERE {w}"
    rejected = tmp_path / "rejected.parquet"
    broken = "defect IS NOT NULL AND defect <> $$redelivered$$"
    duckdb.sql(f"COPY ({kept.format(t=truth, w=broken)}) TO '{rejected}' (FORMAT parquet)")
    deduped, naive = tmp_path / "deduped.parquet", tmp_path / "naive.parquet"
    duckdb.sql(f"COPY ({kept.format(t=truth, w='defect IS NULL')}) TO '{deduped}' (FORMAT parquet)")
    duckdb.sql(
        f"COPY ({kept.format(t=truth, w='defect IS NULL OR defect = $$redelivered$$')})"
        f" TO '{naive}' (FORMAT parquet)"
    )
    code, text = _cli(
        "grade",
        "--kept",
        str(deduped),
        "--rejected",
        str(rejected),
        "--json",
        "--config",
        str(store),
    )
    assert code == 0, text
    code, text = _cli(
        "grade", "--kept", str(naive), "--rejected", str(rejected), "--json", "--config", str(store)
    )
    assert code == 1, text
    events = json.loads(text)["streams"]["events"]["by_defect"]["redelivered"]
    assert events["escaped"] == copies and events["caught"] == 0
