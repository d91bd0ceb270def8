"""`emugen backfill` on a real fleet: redis-server, `celery worker` processes, kill -9 mid-run.

The store after a 2-worker backfill, with one worker (main process and pool) and the command
itself killed -9 in the middle and the command rerun, equals table by table the store after
a 1-worker backfill of the same range (sorted content hash per table; the wall-clock columns
left out are store_helpers.VOLATILE: generated/bronze/silver/gold_at, the *_ms durations,
the worker's name, and redispatched_at; and gold_window_drivers.batch_id, which batch reached
gold first and counted a shared driver: the completion order, not data).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from emugen.db.models import BatchRow
from emugen.db.session import dispose_engines, engine_for, read_session
from emugen.errors import BrokerError
from emugen.fleet.broker import redis_binary
from emugen.fleet.supervisor import kill_group, wait_for
from emugen.lab.backfill import CLOCK_START, BackfillFleet
from tests.conftest import PG_URL, _postgres_or_skip
from tests.store_helpers import digests

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.slow]

START, END = CLOCK_START, CLOCK_START + timedelta(hours=12)
TICKS = 12 + 48  # companies every hour, events every 15 minutes


def config(database_url: str) -> dict:
    """Production cadence at a tenth of the volume; a resend after 2 s without gold."""
    return {
        "mode": "production",
        "seed": 42,
        "clock": {"kind": "simulated", "start": CLOCK_START.isoformat()},
        "database_url": database_url,
        "broker_url": "",
        "companies": {
            "production": {"interval": "PT1H", "min_batch_size": 8, "max_batch_size": 12},
            "quality": {"rate": 0.2},
        },
        "events": {
            "production": {"interval": "PT15M", "events_per_driver": 0.5},
            "quality": {"rate": 0.1},
        },
        "landing": {"enabled": False},
        "fleet": {"stuck_after": 2},
    }


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_stores(request, tmp_path):
    """Two fresh, empty stores on one backend."""
    try:
        redis_binary()
    except BrokerError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but no redis-server: {exc}")
        pytest.skip(str(exc))
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'one.db'}", f"sqlite:///{tmp_path / 'two.db'}"
        return
    _postgres_or_skip()
    from emugen.lab import private_database

    with (
        private_database(PG_URL, tmp_path, "one") as one,
        private_database(PG_URL, tmp_path, "two") as two,
    ):
        yield one, two


def in_gold(url: str) -> int:
    with read_session(engine_for(url)) as session:
        return (
            session.scalar(
                select(func.count()).select_from(BatchRow).where(BatchRow.status == "gold")
            )
            or 0
        )


def logs(folder: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
        for p in sorted(folder.glob("*.log"))
    )


def test_a_two_worker_backfill_with_kills_equals_a_one_worker_backfill(two_stores, tmp_path):
    one_url, two_url = two_stores
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    # a plain `celery -A emugen worker` (no -Q): backfill ticks go to the default queue
    with BackfillFleet(tmp_path / "one", config(one_url), workers=1, plain=True) as fleet:
        fleet.start()
        command = fleet.backfill(START, END, tmp_path / "one" / "backfill.log")
        assert command.wait(120) == 0, logs(tmp_path / "one")
    assert in_gold(one_url) == TICKS

    with BackfillFleet(tmp_path / "two", config(two_url), workers=2) as fleet:
        fleet.start()
        command = fleet.backfill(START, END, tmp_path / "two" / "backfill.log")
        wait_for(
            lambda: in_gold(two_url) >= TICKS // 4, 90, "a quarter of the ticks in gold", every=0.05
        )
        fleet.kill("worker2", group=True)  # main process and pool child, mid-task or not
        wait_for(
            lambda: in_gold(two_url) >= TICKS // 2, 90, "half of the ticks in gold", every=0.05
        )
        kill_group(command.pid)  # kill -9 the command too
        command.wait(10)
        assert command.returncode == -9
        assert in_gold(two_url) < TICKS, "the kill came too late to test a resume"
        rerun = fleet.backfill(START, END, tmp_path / "two" / "rerun.log")
        assert rerun.wait(120) == 0, logs(tmp_path / "two")
        assert "received" in (tmp_path / "two" / "worker2.log").read_text()
    one, two = digests(engine_for(one_url)), digests(engine_for(two_url))
    differing = [table for table in one if one[table] != two[table]]
    assert not differing, f"tables differ: {differing}"
    dispose_engines(lambda url: url in (one_url, two_url))
