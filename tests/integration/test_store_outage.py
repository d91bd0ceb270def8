"""Real worker, beat and redis-server on a store whose disk fills up or whose file goes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from emugen.db.models import BatchRow, SkippedTick
from emugen.db.session import read_session
from emugen.fleet.outage import PARKED_KEY
from emugen.web.app import create_app
from tests import disk_helpers
from tests.disk_helpers import SmallDisk
from tests.integration.conftest import Fleet, wait_for

small_disk = disk_helpers.small_disk
SENT = re.compile(r"Sending due task generate-(\w+) \(emugen\.generate_batch\) for (\S+)")
BASE = "http://127.0.0.1:8000"


def _sent_ticks(beat_log: str) -> set[tuple[str, datetime]]:
    return {(stream, datetime.fromisoformat(at)) for stream, at in SENT.findall(beat_log)}


def _ended(fleet: Fleet) -> tuple[set[tuple[str, datetime]], set[tuple[str, datetime]]]:
    """(ticks that became batches, ticks recorded as skips); none before beat made the tables."""
    try:
        with read_session(fleet.engine()) as session:
            batches = set(session.execute(select(BatchRow.stream, BatchRow.scheduled_at)))
            skips = set(session.execute(select(SkippedTick.stream, SkippedTick.scheduled_at)))
    except OperationalError as exc:
        if "no such table" in str(exc):
            return set(), set()
        raise
    return {tuple(b) for b in batches}, {tuple(s) for s in skips}


def _run(fleet: Fleet, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emugen", *args, "--config", str(fleet.config)],
        cwd=fleet.folder,
        env=fleet.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _health(client: TestClient) -> dict[str, Any]:
    return client.get("/api/health").json()


def test_a_full_disk_is_named_everywhere_and_every_tick_still_ends_as_a_batch_or_a_skip(
    fleet: Fleet, small_disk: SmallDisk
):
    fleet.database_url = f"sqlite:///{small_disk.path / 'emugen.db'}"
    fleet.write(interval=1, fleet={"max_retries": 1})
    worker, beat = fleet.start()
    wait_for(lambda: len(_ended(fleet)[0]) >= 2, 40, "the first batches")
    redis = fleet.redis.client()
    app = create_app(fleet.config, environ={})
    with TestClient(app, base_url=BASE) as client:
        small_disk.fill()
        full = wait_for(
            lambda: (h := _health(client))["store"]["fault"] and h,
            40,
            "health to name the database error",
        )
        assert full["status"] == "degraded"
        assert "the database refuses writes: database or disk is full" in full["reasons"][0]
        assert "database or disk is full" in client.get("/").text

        status = _run(fleet, "status")
        assert status.returncode == 0, status.stderr
        assert status.stdout.startswith("fleet: DEGRADED")
        assert "store: the database refuses writes: database or disk is full" in status.stdout

        pause = _run(fleet, "pause")
        assert pause.returncode == 2
        assert "Traceback" not in pause.stderr and len(pause.stderr.strip().splitlines()) == 1
        assert pause.stderr.startswith("emugen: cannot pause the fleet: the database at ")
        assert "database or disk is full" in pause.stderr

        wait_for(lambda: redis.llen(PARKED_KEY) >= 2, 60, "ticks parked in Redis")
        parked_at_most = redis.llen(PARKED_KEY)
        small_disk.free()
        freed = time.time()
        wait_for(lambda: redis.llen(PARKED_KEY) == 0, 30, "beat to write the parked ticks back")
        wait_for(lambda: _health(client)["store"]["ok"], 70, "health to clear the store fault")

    def landed_since_freed() -> bool:
        with read_session(fleet.engine()) as session:
            latest = session.scalar(
                select(BatchRow.generated_at).order_by(BatchRow.generated_at.desc()).limit(1)
            )
        return latest is not None and latest.timestamp() > freed

    wait_for(landed_since_freed, 30, "a batch after space came back")
    fleet.stop(beat)
    sent = _sent_ticks(beat.text())

    def every_tick_ended() -> bool:
        batches, skips = _ended(fleet)
        return not sent - batches - skips

    try:
        wait_for(every_tick_ended, 60, "every tick sent to end as a batch or a skip")
    finally:
        batches, skips = _ended(fleet)
        print("unaccounted:", sorted(sent - batches - skips))
    assert len(skips) >= parked_at_most  # the parked ones are now skip rows
    assert batches & skips == set()  # no tick is both
    assert worker.alive()


def test_a_deleted_sqlite_file_is_reported_and_nothing_is_written_into_the_ghost(fleet: Fleet):
    fleet.write(interval=1)
    worker, beat = fleet.start()
    wait_for(lambda: len(fleet.batches()) >= 2, 40, "the first batches")
    app = create_app(fleet.config, environ={})
    db = fleet.folder / "emugen.db"
    with TestClient(app, base_url=BASE) as client:
        assert "store" in _health(client)  # the dashboard has the file open
        os.unlink(db)
        wait_for(lambda: not beat.alive(), 20, "beat to stop")
        assert "beat stops: the SQLite file" in beat.text() and "was deleted" in beat.text()
        health = _health(client)
        assert health["status"] == "degraded"
        assert any("emugen.db was deleted while emugen had it open" in r for r in health["reasons"])

    wal = fleet.folder / "emugen.db-wal"
    written = wal.stat().st_mtime_ns
    from celery import Celery

    sender = Celery("test-sender", broker=fleet.redis.url, set_as_current=False)
    sender.send_task(
        "emugen.generate_batch",
        args=["events", datetime.now().astimezone().isoformat()],
        queue="generate",
    )
    wait_for(lambda: "StoreFileGone" in worker.text(), 30, "the worker to refuse the tick")
    assert wal.stat().st_mtime_ns == written  # no process wrote into the ghost
    assert not db.exists()  # and none made a new file in its place
