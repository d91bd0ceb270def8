"""The task wiring on Celery's own test worker (memory://): generate -> silver -> gold."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import fakeredis
import pytest
from sqlalchemy import func, select

from emugen.db.models import BatchRow, SkippedTick
from emugen.db.session import engine_for, init_db, read_session, write_session
from emugen.errors import SeqContention
from emugen.fleet import tasks, worker
from emugen.fleet.backpressure import gate, pipeline_depth, priority_keys, queue_depth
from emugen.fleet.control import set_paused, skip_counts
from emugen.pipeline.bronze import generate_and_land
from emugen.pipeline.reconcile import reconcile
from emugen.settings import Fleet, load_settings
from tests.fleet_helpers import write_config

pytest_plugins = ("celery.contrib.pytest",)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SETTLE_S = 120  # generous: the machine is shared; the test waits for an outcome, not a speed


@pytest.fixture
def fleet(tmp_path, monkeypatch, database_url, celery_session_app, celery_session_worker):
    """A configured worker runtime behind Celery's in-process test worker."""

    def use(**fleet_limits):
        config = write_config(tmp_path / "emugen.yaml", database_url, fleet=fleet_limits)
        monkeypatch.setenv("EMUGEN_CONFIG", str(config))
        worker.configure(config)
        engine = engine_for(database_url)
        init_db(engine)
        return engine

    return use


def statuses(engine) -> dict[str, str]:
    with read_session(engine) as session:
        return dict(session.execute(select(BatchRow.batch_id, BatchRow.status)).all())


def settle(engine, count: int) -> dict[str, str]:
    """Wait until `count` batches have each reached gold or failed."""
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        found = statuses(engine)
        if len(found) >= count and set(found.values()) <= {"gold", "failed"}:
            return found
        time.sleep(0.05)
    return statuses(engine)


@pytest.mark.parametrize("mode", ["emulated", "production"])
def test_a_tick_of_each_stream_runs_all_the_way_to_gold_in_both_modes(fleet, mode):
    engine = fleet()
    for i in range(3):
        at = (T0 + timedelta(hours=i)).isoformat()
        tasks.generate_batch.delay("companies", at, mode).get(timeout=SETTLE_S)
        tasks.generate_batch.delay("events", at, mode).get(timeout=SETTLE_S)
    found = settle(engine, 6)
    assert len(found) == 6
    assert set(found.values()) == {"gold"}
    with read_session(engine) as session:
        modes = set(session.scalars(select(BatchRow.mode)))
        result = reconcile(session)
    assert modes == {mode}
    assert result.ok and result.caught_pct == 100.0


def test_a_retried_tick_makes_no_second_batch(fleet):
    engine = fleet()
    first = tasks.generate_batch.delay("companies", T0.isoformat()).get(timeout=SETTLE_S)
    again = tasks.generate_batch.delay("companies", T0.isoformat()).get(timeout=SETTLE_S)
    assert first == again == "companies-000000001"
    assert len(settle(engine, 1)) == 1


def test_a_landed_batch_keeps_its_generate_task_id_and_the_queue_depth_the_gate_read(fleet):
    engine = fleet()
    sent = tasks.generate_batch.delay("companies", T0.isoformat())
    assert sent.get(timeout=SETTLE_S) == "companies-000000001"
    with read_session(engine) as session:
        row = session.get(BatchRow, "companies-000000001")
        assert row is not None
        assert row.task_id == sent.id  # the id Flower's task page is named by
        assert row.queue_depth == 0  # memory:// has no Redis list: the gate reads 0


def test_a_paused_fleet_records_the_tick_as_skipped_and_consumes_no_seq(fleet):
    engine = fleet()
    with write_session(engine) as session:
        set_paused(session, True)
    assert tasks.generate_batch.delay("events", T0.isoformat()).get(timeout=SETTLE_S) is None
    with write_session(engine) as session:
        assert skip_counts(session) == {"paused": 1}
        set_paused(session, False)
    assert (
        tasks.generate_batch.delay("companies", T0.isoformat()).get(timeout=SETTLE_S)
        == "companies-000000001"
    )


def test_a_worker_over_the_in_flight_limit_skips_with_the_reason(fleet, tmp_path):
    engine = fleet(max_in_flight=1)
    # landed but never chained: one batch in flight
    generate_and_land(engine, load_settings(tmp_path / "emugen.yaml"), "companies", T0)
    later = (T0 + timedelta(hours=1)).isoformat()
    assert tasks.generate_batch.delay("events", later).get(timeout=SETTLE_S) is None
    with read_session(engine) as session:
        skip = session.scalar(select(SkippedTick))
        assert skip.reason == "in_flight" and "fleet.max_in_flight=1" in skip.detail
        assert session.scalar(select(func.count()).select_from(BatchRow)) == 1


def test_the_reaper_finishes_a_batch_whose_chain_was_lost(fleet, tmp_path):
    engine = fleet()
    # landed as the generate task would, but the chain's message was lost
    generate_and_land(engine, load_settings(tmp_path / "emugen.yaml"), "companies", T0)
    assert statuses(engine) == {"companies-000000001": "bronze"}
    with write_session(engine) as session:
        session.get(BatchRow, "companies-000000001").bronze_at = T0 - timedelta(hours=1)
    assert tasks.reap.delay().get(timeout=SETTLE_S) == [["companies-000000001", "silver"]]
    assert settle(engine, 1) == {"companies-000000001": "gold"}
    assert tasks.reap.delay().get(timeout=SETTLE_S) == []


# -- the backpressure gate against fakeredis LLEN ---------------------------------------------


def test_queue_depth_counts_every_priority_list_of_the_queue():
    redis = fakeredis.FakeRedis()
    for key, n in zip(priority_keys("pipeline"), (2, 1, 0, 3), strict=True):
        for _ in range(n):
            redis.rpush(key, b"m")
    redis.rpush("generate", b"other queue")
    assert queue_depth(redis, "pipeline") == 6


def test_the_pipeline_depth_is_read_through_the_apps_connection_pool():
    redis = fakeredis.FakeRedis()
    redis.rpush("pipeline", b"a", b"b")

    @contextmanager
    def acquire(**_):
        yield SimpleNamespace(default_channel=SimpleNamespace(client=redis))

    assert pipeline_depth(SimpleNamespace(pool=SimpleNamespace(acquire=acquire))) == 2


def test_the_gate_opens_below_the_limits_and_names_the_limit_it_hit():
    limits = Fleet(max_queue_depth=3, max_in_flight=5)
    redis = fakeredis.FakeRedis()
    redis.rpush("pipeline", b"a", b"b")
    assert gate(limits, queue_depth(redis), 0) is None
    redis.rpush("pipeline\x06\x163", b"c")
    skip = gate(limits, queue_depth(redis), 0)
    assert skip.reason == "queue_depth" and "3 messages" in skip.detail
    assert gate(limits, 0, 5).reason == "in_flight"


def test_a_tick_that_keeps_losing_the_seq_race_is_retried_then_made(fleet, monkeypatch):
    engine = fleet(max_retries=2)
    calls = []

    def loses_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise SeqContention("could not allocate a events seq after 8 attempts")
        return generate_and_land(*args, **kwargs)

    monkeypatch.setattr(worker, "generate_and_land", loses_once)
    at = T0.isoformat()
    tasks.generate_batch.delay("companies", at, "emulated").get(timeout=SETTLE_S)
    found = settle(engine, 1)
    assert list(found.values()) == ["gold"] and len(calls) == 2


def test_a_tick_that_loses_the_seq_race_on_every_retry_is_recorded_as_failed(fleet, monkeypatch):
    engine = fleet(max_retries=0)

    def always_loses(*args, **kwargs):
        raise SeqContention("could not allocate a events seq after 8 attempts")

    monkeypatch.setattr(worker, "generate_and_land", always_loses)
    result = tasks.generate_batch.delay("events", T0.isoformat(), "emulated")
    with pytest.raises(SeqContention):
        result.get(timeout=SETTLE_S)
    with read_session(engine) as session:
        skips = session.execute(
            select(SkippedTick.stream, SkippedTick.reason, SkippedTick.detail)
        ).all()
    assert [(s, r) for s, r, _ in skips] == [("events", "failed")]
    assert "could not allocate" in skips[0][2]
