"""Time, delivery and the answer on the dashboard and the batch page, over a real store with
late, redelivered, delayed and drifted events: per-stream arrival counts and contract version,
each late or redelivered row marked (a copy linked to its original), gold window revisions,
and an outside pipeline's gold graded live with its verdict, causes and /metrics gauges."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import fakeredis
import pytest
import yaml
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from emugen.cli import main
from emugen.db.ledger import ArrivalEntry, GoldWindowRevision
from emugen.db.models import BatchRow
from emugen.db.session import read_session
from emugen.errors import ConfigError
from emugen.pipeline.runner import run_pipeline
from emugen.settings import load_settings
from emugen.vocabulary import EPOCH, MS
from emugen.web.app import create_app
from emugen.web.probe import BrokerProbe
from tests.conftest import SIMULATED
from tests.test_arrival_pipeline import arriving_settings
from tests.test_grade_answer_cli import NAIVE

PONG = {"w@h": {"ok": "pong"}}


def arrival_config(folder: Path, database_url: str, grade: dict[str, Any] | None = None) -> Path:
    """The config file of a store made by `arriving_settings`, with `grade:` when given."""
    config = folder / "emugen.yaml"
    data: dict[str, Any] = {
        "database_url": database_url,
        "broker_url": "redis://127.0.0.1:6379/0",
        "clock": SIMULATED,
        "landing": {"root": str(folder / "landing")},
    }
    if grade is not None:
        data["grade"] = grade
    config.write_text(yaml.safe_dump(data))
    return config


@pytest.fixture
def store(engine, database_url, tmp_path) -> Path:
    """6 batches of each stream under every arrival condition; its config file."""
    run_pipeline(engine, arriving_settings(), 6, size=60)
    return arrival_config(tmp_path, database_url)


@contextmanager
def client_for(config: Path, grade: dict[str, Any] | None = None) -> Iterator[TestClient]:
    if grade is not None:
        data = yaml.safe_load(config.read_text())
        data["grade"] = grade
        config.write_text(yaml.safe_dump(data))
    settings = load_settings(config, env=False)
    probe = BrokerProbe(settings.broker_url, client=fakeredis.FakeRedis(), pinger=lambda: PONG)
    with TestClient(
        create_app(config, probe=probe, environ={}), base_url="http://127.0.0.1"
    ) as client:
        yield client


def _export(config: Path, kind: str, out: Path, stream: str | None = None) -> Path:
    result = CliRunner().invoke(
        main,
        ["export", kind, *(["--stream", stream] if stream else []), "--out", str(out)]
        + ["--config", str(config)],
    )
    assert result.exit_code == 0, result.output
    return out


def _naive_gold(config: Path, folder: Path) -> Path:
    """A consumer's gold that counts every redelivered copy again."""
    truth = _export(config, "truth", folder / "truth.parquet")
    gold = folder / "naive.parquet"
    duckdb.sql(f"COPY ({NAIVE.format(truth=truth)}) TO '{gold}' (FORMAT parquet)")
    return gold


def _ledger(engine, condition: str) -> list[ArrivalEntry]:
    with read_session(engine) as session:
        rows = list(
            session.scalars(select(ArrivalEntry).where(ArrivalEntry.condition == condition))
        )
        session.expunge_all()
    return rows


def test_health_shows_each_streams_late_redelivered_delayed_counts_and_contract_version(
    store, engine
):
    with read_session(engine) as session:
        counts = dict(
            session.execute(
                select(ArrivalEntry.condition, func.count()).group_by(ArrivalEntry.condition)
            ).all()
        )
        revised = session.execute(
            select(func.count(), func.max(GoldWindowRevision.revisions))
        ).one()
    with client_for(store) as client:
        health = client.get("/api/health").json()
        page = client.get("/").text
    events = health["streams"]["events"]["arrivals"]
    assert events == {
        "late": counts["late"],
        "redelivered": counts["redelivered"],
        "delayed": counts.get("delayed", 0),
        "contract_version": 2,
    }
    assert counts["late"] > 0 and counts["redelivered"] > 0
    assert health["streams"]["companies"]["arrivals"] == {
        "late": 0,
        "redelivered": 0,
        "delayed": 0,
        "contract_version": 1,
    }
    assert health["gold_windows"] == {"revised": revised[0], "max_revisions": revised[1] or 0}
    assert f'id="late-events">{counts["late"]}<' in page
    assert 'id="contract-events">v2<' in page


def test_the_snapshots_arrival_counts_follow_the_batches_that_land(store, engine):
    with client_for(store) as client:
        before = client.get("/api/snapshot").json()["streams"]["events"]["arrivals"]
        run_pipeline(engine, arriving_settings(), 2, size=60)
        after = client.get("/api/snapshot").json()["streams"]["events"]["arrivals"]
    assert after["late"] == len(_ledger(engine, "late")) > before["late"]
    assert after["redelivered"] == len(_ledger(engine, "redelivered"))


def test_the_records_page_marks_each_late_and_redelivered_row_from_the_ledger(store, engine):
    late, copies = _ledger(engine, "late"), _ledger(engine, "redelivered")
    batch_id = copies[0].batch_id
    with client_for(store) as client:
        items = client.get(f"/api/batches/{batch_id}/records?size=500").json()["items"]
        marked = {i["row_no"]: i["arrival"] for i in items if i["arrival"]}
        expected = {a.row_no: a for a in late + copies if a.batch_id == batch_id}
        assert set(marked) == set(expected)
        for row_no, mark in marked.items():
            entry = expected[row_no]
            assert mark["condition"] == entry.condition
            assert mark["original_batch_id"] == entry.original_batch_id
            assert mark["original_row_no"] == entry.original_row_no
            if entry.condition == "late":
                assert mark["lateness_ms"] == entry.lateness_ms > 0
                assert mark["belongs_to_window"] == entry.belongs_to_window.isoformat()
        # each copy's original is a row of the batch it names, holding the same record
        for row_no, mark in marked.items():
            if mark["condition"] != "redelivered":
                continue
            original = client.get(
                f"/api/batches/{mark['original_batch_id']}/records?size=500"
            ).json()["items"]
            copy = next(i for i in items if i["row_no"] == row_no)
            assert original[mark["original_row_no"]]["payload"] == copy["payload"]


def test_a_redelivered_copy_silver_dropped_reads_deduplicated_not_lost(store, engine):
    copies = _ledger(engine, "redelivered")
    with client_for(store) as client:
        for batch_id in sorted({c.batch_id for c in copies}):
            items = client.get(f"/api/batches/{batch_id}/records?size=500").json()["items"]
            verdicts = {
                i["verdict"]
                for i in items
                if (i["arrival"] or {}).get("condition") == "redelivered"
            }
            assert verdicts == {"deduplicated"}, (batch_id, verdicts)
            assert "lost" not in {i["verdict"] for i in items}


def test_gold_rows_on_the_batch_page_carry_their_windows_revisions(store, engine):
    with read_session(engine) as session:
        revisions = dict(
            session.execute(
                select(GoldWindowRevision.window_start_ms, GoldWindowRevision.revisions)
            ).all()
        )
        batches = list(
            session.scalars(select(BatchRow.batch_id).where(BatchRow.stream == "events"))
        )
    assert revisions
    seen = set()
    with client_for(store) as client:
        for batch_id in batches:
            for item in client.get(f"/api/batches/{batch_id}/gold").json()["items"]:
                start = item["window_start_ms"]
                assert item["window_start"] == (EPOCH + MS * start).isoformat()
                assert item["revisions"] == revisions.get(start, 0)
                seen.add(start)
            assert client.get(f"/api/batches/{batch_id}/gold").json()["answer"] is None
    assert set(revisions) <= seen  # every revised window shows on some batch's page


def test_a_naive_consumers_gold_fails_on_the_panel_the_batch_page_and_metrics(
    store, engine, tmp_path
):
    gold = _naive_gold(store, tmp_path)
    copies = _ledger(engine, "redelivered")
    with client_for(store, {"gold": str(gold)}) as client:
        x = client.get("/api/snapshot").json()["external"]
        metrics = client.get("/metrics").text
        answer = client.get(f"/api/batches/{copies[0].batch_id}/gold").json()["answer"]
    g = x["gold"]
    assert x["graded"] is False and x["streams"] == {}  # no kept: no filter grade
    assert g["ok"] and g["verdict"] == "FAIL" and 0 < g["wrong"] <= g["cells"]
    assert g["by_cause"]["redelivered_counted"] > 0
    assert len(g["worst"]) == 3
    assert all(c["causes"] and c["causes"][0]["text"] for c in g["worst"])
    assert f"emugen_gold_wrong_cells {float(g['wrong'])}" in metrics
    assert f"emugen_gold_cells {float(g['cells'])}" in metrics
    assert "emugen_gold_pass 0.0" in metrics
    by_cause = float(g["by_cause"]["redelivered_counted"])
    assert f'emugen_gold_wrong_cells_by_cause{{cause="redelivered_counted"}} {by_cause}' in metrics
    assert 'emugen_gold_wrong_cells_by_cause{cause="late_dropped"} 0.0' in metrics
    assert "emugen_external_grade_ok" not in metrics
    # the batch that holds a copy: its windows hold a cell the copy made wrong
    assert answer["verdict"] == "FAIL" and answer["wrong"] > 0
    assert answer["by_cause"]["redelivered_counted"] > 0
    assert 0 < len(answer["wrong_cells"]) <= answer["wrong"]
    promtool = shutil.which("promtool")
    if promtool is None and os.environ.get("CI"):
        pytest.fail("CI is set but promtool is missing")
    if promtool is not None:
        done = subprocess.run(
            [promtool, "check", "metrics"], input=metrics, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_emugens_own_gold_passes_beside_the_filter_grade(store, tmp_path):
    gold = _export(store, "gold", tmp_path / "gold.parquet", "events")
    kept = _export(store, "silver", tmp_path / "silver_events.parquet", "events")
    with client_for(store, {"kept": str(kept), "gold": str(gold)}) as client:
        x = client.get("/api/snapshot").json()["external"]
        metrics = client.get("/metrics").text
        answer = client.get("/api/batches/events-000000002/gold").json()["answer"]
    assert x["graded"] and x["ok"] and x["streams"]["events"]
    g = x["gold"]
    assert g["verdict"] == "PASS" and g["wrong"] == 0 and g["cells"] > 20
    assert g["by_cause"] == {} and g["worst"] == []
    assert "emugen_gold_pass 1.0" in metrics and "emugen_gold_wrong_cells 0.0" in metrics
    assert answer == {**answer, "verdict": "PASS", "wrong": 0, "by_cause": {}, "wrong_cells": []}


def test_a_missing_gold_file_is_said_on_the_panel_not_raised(store, tmp_path):
    with client_for(store, {"gold": str(tmp_path / "nowhere.parquet")}) as client:
        g = client.get("/api/snapshot").json()["external"]["gold"]
        metrics = client.get("/metrics").text
    assert g["ok"] is False and "nowhere.parquet" in g["error"] and g["verdict"] is None
    assert "emugen_gold_grade_ok 0.0" in metrics and "emugen_gold_cells" not in metrics


@pytest.mark.parametrize(
    ("grade", "names"),
    [
        ({"every": "10s"}, "grade needs kept"),
        ({"gold": "g.parquet", "policy": "sometimes"}, "grade.policy"),
        ({"gold": "g.parquet", "tolerance": "abs"}, "grade.tolerance"),
        ({"gold": "g.parquet", "trigger": "often"}, "grade.trigger"),
    ],
)
def test_a_bad_grade_section_is_refused_naming_the_field(tmp_path, grade, names):
    config = tmp_path / "emugen.yaml"
    config.write_text(yaml.safe_dump({"grade": grade}))
    with pytest.raises(ConfigError) as found:
        load_settings(config, env=False)
    assert names in str(found.value)


def test_the_openapi_document_describes_the_new_parts(store):
    with client_for(store) as client:
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert {"StreamArrivals", "GoldWindows", "ArrivalMark", "GoldCell", "GoldVerdict"} <= set(
        schemas
    )
    assert schemas["GoldVerdict"]["properties"]["worst"]["items"] == {
        "$ref": "#/components/schemas/GoldCell"
    }
