"""The long-run task hooks: the prune task and the record of ticks that expired in the queue."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from emugen.db.models import BatchRow, SkippedTick
from emugen.db.session import engine_for, init_db, read_session
from emugen.fleet import tasks, worker
from emugen.pipeline.runner import run_pipeline
from tests.conftest import make_settings
from tests.fleet_helpers import write_config

pytest_plugins = ("celery.contrib.pytest",)


@pytest.fixture
def configured(tmp_path, database_url):
    def use(**fleet):
        config = write_config(tmp_path / "emugen.yaml", database_url, fleet=fleet)
        worker.configure(config)
        engine = engine_for(database_url)
        init_db(engine)
        return engine

    return use


def skips(engine) -> list[tuple[str, str]]:
    with read_session(engine) as session:
        return [(s.stream, s.reason) for s in session.scalars(select(SkippedTick))]


def test_the_prune_task_runs_the_retention_or_says_it_is_off(configured, celery_session_worker):
    engine = configured(retain_batches_for="PT1H")
    run_pipeline(engine, make_settings(), 2)
    # nothing is an hour old yet
    assert tasks.prune.delay().get(timeout=120) == "pruned 0 batches"
    configured(retain_batches_for=None)
    assert "retention is off" in tasks.prune.delay().get(timeout=120)


def test_an_expired_tick_is_recorded_as_a_skip_unless_its_batch_exists(configured):
    engine = configured()
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    request = SimpleNamespace(args=["events", at.isoformat()])
    tasks._record_expired_tick(sender=tasks.generate_batch, request=request, expired=True)
    assert skips(engine) == [("events", "expired")]
    tasks._record_expired_tick(sender=tasks.generate_batch, request=request, expired=False)
    tasks._record_expired_tick(sender=tasks.reap, request=request, expired=True)
    assert len(skips(engine)) == 1  # revoked (not expired), or another task: not a tick

    landed = run_pipeline(engine, make_settings(), 1)[1].landed  # events-000000001
    with read_session(engine) as session:
        scheduled = session.get(BatchRow, landed.batch_id).scheduled_at
    redelivered = SimpleNamespace(args=["events", scheduled.isoformat()])
    tasks._record_expired_tick(sender=tasks.generate_batch, request=redelivered, expired=True)
    assert len(skips(engine)) == 1  # a redelivered tick whose batch landed is not a skip
