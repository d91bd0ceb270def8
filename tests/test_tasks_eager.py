"""The task wiring in eager mode: generate -> silver -> gold for both streams and both modes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import fakeredis
import pytest
from sqlalchemy import func, select

from emugen import tasks
from emugen.backpressure import gate, priority_keys, queue_depth
from emugen.celery import app
from emugen.control import set_paused, skip_counts
from emugen.db.models import BatchRow, SkippedTick
from emugen.db.session import engine_for, init_db, read_session, write_session
from emugen.pipeline.reconcile import reconcile
from emugen.reload import ConfigWatcher
from emugen.settings import Fleet
from tests.fleet_helpers import write_config

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def eager(tmp_path, monkeypatch, database_url):
    config = write_config(tmp_path / "emugen.yaml", database_url)
    monkeypatch.setenv("EMUGEN_CONFIG", str(config))
    monkeypatch.setattr(tasks, "_watcher", ConfigWatcher(config))
    monkeypatch.setattr(tasks, "pipeline_depth", lambda: 0)
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    engine = engine_for(database_url)
    init_db(engine)
    yield engine, config
    app.conf.update(task_always_eager=False, task_eager_propagates=False)


def statuses(engine) -> dict[str, str]:
    with read_session(engine) as session:
        return dict(session.execute(select(BatchRow.batch_id, BatchRow.status)).all())


@pytest.mark.parametrize("mode", ["emulated", "production"])
def test_a_tick_of_each_stream_runs_all_the_way_to_gold_in_both_modes(eager, mode):
    engine, _ = eager
    for i in range(3):
        at = (T0 + timedelta(hours=i)).isoformat()
        tasks.generate_batch.delay("companies", at, mode)
        tasks.generate_batch.delay("events", at, mode)
    found = statuses(engine)
    assert len(found) == 6
    assert set(found.values()) == {"gold"}
    with read_session(engine) as session:
        modes = set(session.scalars(select(BatchRow.mode)))
        result = reconcile(session)
    assert modes == {mode}
    assert result.ok and result.caught_pct == 100.0


def test_a_retried_tick_makes_no_second_batch(eager):
    engine, _ = eager
    first = tasks.generate_batch.delay("companies", T0.isoformat()).get()
    again = tasks.generate_batch.delay("companies", T0.isoformat()).get()
    assert first == again == "companies-000000001"
    assert len(statuses(engine)) == 1


def test_a_paused_fleet_records_the_tick_as_skipped_and_consumes_no_seq(eager):
    engine, _ = eager
    with write_session(engine) as session:
        set_paused(session, True)
    assert tasks.generate_batch.delay("events", T0.isoformat()).get() is None
    with write_session(engine) as session:
        assert skip_counts(session) == {"paused": 1}
        set_paused(session, False)
    assert tasks.generate_batch.delay("companies", T0.isoformat()).get() == "companies-000000001"


def test_a_worker_over_the_queue_limit_skips_with_the_reason(eager, monkeypatch):
    engine, _ = eager
    monkeypatch.setattr(tasks, "pipeline_depth", lambda: 50)
    assert tasks.generate_batch.delay("companies", T0.isoformat()).get() is None
    with read_session(engine) as session:
        skip = session.scalar(select(SkippedTick))
        assert skip.reason == "queue_depth" and "fleet.max_queue_depth=50" in skip.detail
        assert session.scalar(select(func.count()).select_from(BatchRow)) == 0


def test_the_reaper_finishes_a_batch_whose_chain_was_lost(eager, monkeypatch):
    engine, _ = eager
    working = tasks.stage_chain
    monkeypatch.setattr(tasks, "stage_chain", lambda *a, **k: _Nothing())
    tasks.generate_batch.delay("companies", T0.isoformat())
    assert statuses(engine) == {"companies-000000001": "bronze"}
    monkeypatch.setattr(tasks, "stage_chain", working)  # the message was lost, not the chain
    with write_session(engine) as session:
        session.get(BatchRow, "companies-000000001").bronze_at = T0 - timedelta(hours=1)
    assert tasks.reap.delay().get() == [["companies-000000001", "silver"]]
    assert statuses(engine) == {"companies-000000001": "gold"}
    assert tasks.reap.delay().get() == []


class _Nothing:
    def apply_async(self, *args, **kwargs):
        return None


# -- the backpressure gate against fakeredis LLEN ---------------------------------------------


def test_queue_depth_counts_every_priority_list_of_the_queue():
    redis = fakeredis.FakeRedis()
    for key, n in zip(priority_keys("pipeline"), (2, 1, 0, 3), strict=True):
        for _ in range(n):
            redis.rpush(key, b"m")
    redis.rpush("generate", b"other queue")
    assert queue_depth(redis, "pipeline") == 6


def test_the_gate_opens_below_the_limits_and_names_the_limit_it_hit():
    limits = Fleet(max_queue_depth=3, max_in_flight=5)
    redis = fakeredis.FakeRedis()
    redis.rpush("pipeline", b"a", b"b")
    assert gate(limits, queue_depth(redis), 0) is None
    redis.rpush("pipeline\x06\x163", b"c")
    skip = gate(limits, queue_depth(redis), 0)
    assert skip.reason == "queue_depth" and "3 messages" in skip.detail
    assert gate(limits, 0, 5).reason == "in_flight"
