"""The one read model: `emugen status` and the dashboard read each figure from the same place."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from emugen.db.models import BatchRow
from emugen.db.session import engine_for, init_db, read_session, write_session
from emugen.fleet.control import record_reload, record_skip, set_paused
from emugen.pipeline.runner import run_pipeline
from emugen.status.health import health
from emugen.status.report import batch_tally, control, layer_latencies, status
from tests.conftest import make_settings

PROBE: dict[str, Any] = {
    "broker": {"ok": True, "error": None},
    "workers": {"ok": True},
    "queues": {},
    "store": {"fault": None, "parked_ticks": None},
}
CONFIG: dict[str, Any] = {"valid": True, "problems": [], "mode": "emulated", "streams": {}}


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    engine = engine_for(f"sqlite:///{tmp_path / 'emugen.db'}")
    init_db(engine)
    run_pipeline(engine, make_settings(), 2)
    with write_session(engine) as session:
        set_paused(session, True)
        record_skip(session, "events", datetime.now(UTC), "paused", "paused by a test")
        record_skip(session, "events", datetime.now(UTC), "backpressure", "queue full")
        record_skip(session, "companies", datetime.now(UTC), "paused", "paused by a test")
        record_reload(session, "beat", fingerprint="abc", mode="emulated")
        record_reload(session, "beat", problems=["mode: 'fast' is not one of ..."])
    return engine


def test_the_cli_report_and_the_dashboard_agree_on_batches_and_control(engine: Any) -> None:
    with read_session(engine) as session:
        report = status(session)
        dash = health(session, CONFIG, PROBE)
    for stream, states in report["batches"].items():
        assert sum(states.values()) == dash["streams"][stream]["batches"]
        assert states.get("gold", 0) == dash["streams"][stream]["gold"]
    assert report["fleet"]["paused"] is dash["paused"] is True
    assert report["fleet"]["skipped_ticks"] == dash["skips"] == {"backpressure": 1, "paused": 2}
    cli_reload, web_reload = report["fleet"]["last_reload"], dash["last_reload"]
    assert web_reload == {**cli_reload, "source": "beat"}
    assert cli_reload["accepted"] is False
    assert cli_reload["problems"] == ["mode: 'fast' is not one of ..."]


def test_the_batch_tally_counts_batches_and_records_per_stream_and_status(engine: Any) -> None:
    with read_session(engine) as session:
        tally = batch_tally(session)
        report = status(session, latest=50)
    assert {(stream, state) for stream, state, _, _ in tally} == {
        ("companies", "gold"),
        ("events", "gold"),
    }
    assert sum(n for *_, n, _ in tally) == 4
    assert sum(records for *_, records in tally) == sum(b["records"] for b in report["latest"])


def test_control_reports_the_last_rejection_beside_the_last_reload(engine: Any) -> None:
    with read_session(engine) as session:
        ctl = control(session)
    assert ctl["skips_total"] == 3
    assert ctl["paused_since"] is not None
    assert ctl["last_reload"] == ctl["last_rejection"]
    assert ctl["last_reload"]["fingerprint"] is None


def test_the_latest_batches_carry_the_same_stage_latencies_as_the_dashboard(engine: Any) -> None:
    with read_session(engine) as session:
        report = status(session, latest=1)
        row = session.get(BatchRow, report["latest"][0]["batch_id"])
        latency = layer_latencies(row)
    latest = report["latest"][0]
    assert (
        latest["bronze_ms"],
        latest["silver_ms"],
        latest["gold_ms"],
        latest["tick_to_gold_ms"],
    ) == (latency["bronze"], latency["silver"], latency["gold"], latency["end_to_end"])
    assert latency["end_to_end"] is not None
