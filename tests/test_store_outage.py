"""A store that refuses writes or whose SQLite file was deleted: named, refused, never lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fakeredis
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from emugen.cli import main
from emugen.db.models import BatchRow, SkippedTick
from emugen.db.session import engine_for, init_db, read_session, write_session
from emugen.errors import StoreFileGone
from emugen.fleet import outage
from emugen.fleet.control import is_paused
from emugen.pipeline.runner import run_pipeline
from emugen.settings import load_settings
from emugen.web.app import create_app
from emugen.web.probe import BrokerProbe
from tests import disk_helpers
from tests.disk_helpers import SmallDisk
from tests.fleet_helpers import write_config

small_disk = disk_helpers.small_disk
PONG = {"worker1@host": {"ok": "pong"}}
TICK = datetime(2026, 12, 2, 4, 0, 0, 123000, tzinfo=UTC)


def _store(folder: Path, db: Path, rounds: int = 1) -> tuple[Path, object]:
    config = write_config(
        folder / "emugen.yaml", f"sqlite:///{db}", broker_url="redis://127.0.0.1:6379/0"
    )
    engine = engine_for(f"sqlite:///{db}")
    init_db(engine)
    if rounds:
        run_pipeline(engine, load_settings(config, env=False), rounds)
    return config, engine


def _skips(engine: object) -> list[tuple[str, datetime, str]]:
    with read_session(engine) as session:
        return [
            tuple(r)
            for r in session.execute(
                select(SkippedTick.stream, SkippedTick.scheduled_at, SkippedTick.reason).order_by(
                    SkippedTick.id
                )
            )
        ]


# -- a deleted SQLite file ---------------------------------------------------------------------


def test_a_deleted_sqlite_file_refuses_every_later_write(tmp_path):
    _, engine = _store(tmp_path, tmp_path / "emugen.db", rounds=0)
    os.unlink(tmp_path / "emugen.db")
    gone = r"emugen\.db was deleted while emugen had it open"
    with pytest.raises(StoreFileGone, match=gone), write_session(engine) as session:
        session.add(
            SkippedTick(at=TICK, stream="events", scheduled_at=TICK, reason="paused", detail="x")
        )


def test_a_file_put_in_place_of_the_open_one_is_refused_too(tmp_path):
    _, engine = _store(tmp_path, tmp_path / "emugen.db", rounds=0)
    os.replace(tmp_path / "emugen.db", tmp_path / "moved.db")
    (tmp_path / "emugen.db").write_bytes(b"")
    with pytest.raises(StoreFileGone, match="was replaced by another file"), write_session(engine):
        pass


def test_health_names_the_deleted_sqlite_file_and_pause_is_a_503_naming_it(tmp_path):
    config, _ = _store(tmp_path, tmp_path / "emugen.db")
    probe = BrokerProbe(
        "redis://127.0.0.1:6379/0", client=fakeredis.FakeRedis(), pinger=lambda: PONG
    )
    app = create_app(config, probe=probe, environ={})
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        assert client.get("/api/health").json()["status"] == "running"
        os.unlink(tmp_path / "emugen.db")
        health = client.get("/api/health").json()
        page = client.get("/").text
        pause = client.post("/api/pause")
    assert health["status"] == "degraded"
    assert "emugen.db was deleted" in health["reasons"][0]
    assert health["store"]["ok"] is False
    assert "emugen.db was deleted" in page
    assert pause.status_code == 503 and "emugen.db was deleted" in pause.json()["detail"]


# -- a store that refuses writes ---------------------------------------------------------------


def test_health_and_the_page_name_the_database_error_a_writer_reported(tmp_path):
    config, _ = _store(tmp_path, tmp_path / "emugen.db")
    redis = fakeredis.FakeRedis()
    outage.report_fault(redis, "worker@a", RuntimeError("database or disk is full"))
    outage.park_tick(redis, "events", TICK, "expired", "waited")
    probe = BrokerProbe("redis://127.0.0.1:6379/0", client=redis, pinger=lambda: PONG)
    with TestClient(
        create_app(config, probe=probe, environ={}), base_url="http://127.0.0.1:8000"
    ) as client:
        health = client.get("/api/health").json()
        page = client.get("/").text
    assert health["status"] == "degraded"
    assert health["reasons"][0].startswith(
        "the database refuses writes: database or disk is full (reported by worker@a"
    )
    assert "1 skipped ticks wait in Redis" in health["reasons"][1]
    assert health["store"]["parked_ticks"] == 1
    assert "database or disk is full" in page


def test_a_skip_the_full_store_refuses_is_parked_and_written_back_once_space_returns(
    small_disk: SmallDisk,
):
    _, engine = _store(small_disk.path.parent, small_disk.path / "emugen.db", rounds=0)
    redis = fakeredis.FakeRedis()
    small_disk.fill()
    recorded = [
        outage.record_or_park(
            engine, redis, "worker@a", "events", TICK + timedelta(seconds=i), "expired", "waited"
        )
        for i in range(3)
    ]
    assert recorded == [False, False, False]
    assert redis.llen(outage.PARKED_KEY) == 3
    assert "database or disk is full" in outage.outage(redis)["fault"]["error"]
    assert outage.drain(engine, redis, "beat") == 0  # still full: nothing leaves Redis
    assert redis.llen(outage.PARKED_KEY) == 3

    small_disk.free()
    assert outage.drain(engine, redis, "beat") == 3
    assert redis.llen(outage.PARKED_KEY) == 0
    assert outage.outage(redis)["fault"] is None
    assert _skips(engine) == [("events", TICK + timedelta(seconds=i), "expired") for i in range(3)]


def test_draining_twice_or_a_tick_that_became_a_batch_writes_no_second_row(tmp_path):
    _, engine = _store(tmp_path, tmp_path / "emugen.db", rounds=1)
    with read_session(engine) as session:
        stream, landed = session.execute(select(BatchRow.stream, BatchRow.scheduled_at)).first()
    redis = fakeredis.FakeRedis()
    outage.park_tick(redis, "events", TICK, "expired", "waited")
    outage.park_tick(redis, "events", TICK, "failed", "the same tick, parked again")
    outage.park_tick(redis, stream, landed, "expired", "a redelivered tick that has its batch")
    assert outage.drain(engine, redis, "beat") == 1
    outage.park_tick(redis, "events", TICK, "expired", "waited")
    assert outage.drain(engine, redis, "beat") == 0
    assert redis.llen(outage.PARKED_KEY) == 0
    assert _skips(engine) == [("events", TICK, "expired")]


def test_pause_on_a_full_disk_is_one_line_naming_the_error_and_exits_2(small_disk: SmallDisk):
    config, engine = _store(small_disk.path.parent, small_disk.path / "emugen.db", rounds=0)
    small_disk.fill()
    result = CliRunner().invoke(main, ["pause", "--config", str(config)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith("emugen: cannot pause the fleet: the database at sqlite:///")
    assert "database or disk is full; free space on the disk" in lines[0]
    small_disk.free()
    assert CliRunner().invoke(main, ["pause", "--config", str(config)]).exit_code == 0
    with read_session(engine) as session:
        assert is_paused(session)


def test_status_says_degraded_and_names_the_database_error(tmp_path, monkeypatch):
    config, _ = _store(tmp_path, tmp_path / "emugen.db")
    redis = fakeredis.FakeRedis()
    monkeypatch.setattr(outage, "client_for", lambda url: redis)
    outage.report_fault(redis, "worker@a", RuntimeError("database or disk is full"))
    result = CliRunner().invoke(main, ["status", "--config", str(config)])
    assert result.exit_code == 0, result.output
    first, second = result.output.splitlines()[:2]
    assert first.startswith("fleet: DEGRADED")
    assert second.startswith("store: the database refuses writes: database or disk is full")
    report = json.loads(
        CliRunner().invoke(main, ["status", "--json", "--config", str(config)]).output
    )
    assert report["store"]["ok"] is False


def test_an_expired_tick_the_full_store_refuses_is_parked_not_only_logged(
    small_disk: SmallDisk, monkeypatch
):
    from types import SimpleNamespace

    from emugen.fleet import tasks, worker

    config, engine = _store(small_disk.path.parent, small_disk.path / "emugen.db", rounds=0)
    worker.configure(config)
    redis = fakeredis.FakeRedis()
    monkeypatch.setattr(outage, "client_for", lambda url: redis)
    small_disk.fill()
    tasks._record_expired_tick(
        sender=tasks.generate_batch,
        expired=True,
        request=SimpleNamespace(args=["events", TICK.isoformat()]),
    )
    assert redis.llen(outage.PARKED_KEY) == 1
    assert "database or disk is full" in outage.outage(redis)["fault"]["error"]
    small_disk.free()
    assert outage.drain(engine, redis, "beat") == 1
    assert _skips(engine) == [("events", TICK, "expired")]


def test_a_reported_fault_changes_the_version_so_open_pages_are_pushed_the_cause(tmp_path):
    import time

    config, _ = _store(tmp_path, tmp_path / "emugen.db")
    redis = fakeredis.FakeRedis()
    probe = BrokerProbe(
        "redis://127.0.0.1:6379/0", client=redis, pinger=lambda: PONG, depth_every=0.05
    )
    web = create_app(config, probe=probe, environ={}).state.web
    try:
        before = web.version()
        outage.report_fault(redis, "worker@a", RuntimeError("database or disk is full"))
        deadline = time.monotonic() + 10  # the probe's thread reads Redis every 50 ms
        while web.version() == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert web.version() != before
        assert "database or disk is full" in web.snapshot()["reasons"][0]
    finally:
        probe.close()


def test_beat_parks_the_paused_skip_a_full_store_refuses_instead_of_sending_the_tick(
    small_disk: SmallDisk, monkeypatch
):
    from types import SimpleNamespace

    from emugen.fleet.control import set_paused
    from emugen.fleet.schedule import EmugenScheduler

    config, engine = _store(small_disk.path.parent, small_disk.path / "emugen.db", rounds=0)
    with write_session(engine) as session:
        set_paused(session, True)
    redis = fakeredis.FakeRedis()
    monkeypatch.setattr(outage, "client_for", lambda url: redis)
    beat = SimpleNamespace(settings=load_settings(config, env=False))
    small_disk.fill()
    assert EmugenScheduler._gate(beat, "events", TICK) is True  # held back, not sent
    assert json.loads(redis.lindex(outage.PARKED_KEY, 0))["reason"] == "paused"
    small_disk.free()
    assert outage.drain(engine, redis, "beat") == 1
    assert _skips(engine) == [("events", TICK, "paused")]


def test_a_process_withdraws_its_fault_once_its_writes_succeed_but_not_another_s():
    redis = fakeredis.FakeRedis()
    outage.clear_fault(redis)  # nothing reported by this process: nothing to clear
    redis.set(outage.FAULT_KEY, json.dumps({"error": "x", "source": "other", "at": "t"}))
    outage.clear_fault(redis)
    assert redis.get(outage.FAULT_KEY) is not None
    outage.report_fault(redis, "worker@a", RuntimeError("database is locked"))
    outage.clear_fault(redis)
    assert redis.get(outage.FAULT_KEY) is None


def test_a_new_process_will_not_pair_a_fresh_file_with_a_deleted_store_s_write_ahead_log(tmp_path):
    config, engine = _store(tmp_path, tmp_path / "emugen.db")
    with engine.connect():  # a running process holds the store open, its WAL not yet folded
        os.unlink(tmp_path / "emugen.db")
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMUGEN_")}
        result = subprocess.run(
            [sys.executable, "-m", "emugen", "status", "--config", str(config)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            cwd=Path(__file__).parents[1],
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "emugen.db is missing but its write-ahead log" in result.stderr
    assert not (tmp_path / "emugen.db").exists()  # nothing was created in its place
