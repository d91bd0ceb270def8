"""The first events batch is never empty: on a store with no company in silver, beat sends the
first companies tick at once and holds events ticks (unsent, no seq used) until one is there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import func, select

from emugen.db.models import BatchRow, SkippedTick
from emugen.db.session import engine_for, init_db, read_session
from emugen.fleet.backpressure import HOLD_RETRY_S
from emugen.fleet.schedule import EmugenScheduler
from emugen.pipeline.bronze import generate_and_land
from emugen.pipeline.runner import refine_and_build
from emugen.pipeline.watermark import usable_companies
from emugen.settings import load_settings
from emugen.vocabulary import Stream
from tests.fleet_helpers import write_config


class Beat:
    """EmugenScheduler on an in-memory broker; what it would send is recorded, not sent."""

    def __init__(self, config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[tuple[str, tuple[Any, ...]]] = []
        monkeypatch.setenv("EMUGEN_CONFIG", str(config))
        monkeypatch.setattr(EmugenScheduler, "apply_async", self._record)
        app = Celery("companies-first", broker="memory://", set_as_current=False)
        app.conf.enable_utc, app.conf.timezone = True, "UTC"
        self.scheduler = EmugenScheduler(app=app)

    def _record(self, entry: Any, producer: Any = None, **_: Any) -> None:
        self.sent.append((entry.name, tuple(entry.args)))

    def due_in(self, name: str) -> float:
        entry = self.scheduler.schedule[name]
        return (entry.last_run_at + entry.schedule.run_every - datetime.now(UTC)).total_seconds()

    def make_due(self, name: str) -> None:
        entry = self.scheduler.schedule[name]
        entry.last_run_at -= entry.schedule.run_every
        self.scheduler._heap = None

    def tick(self, times: int = 5) -> list[str]:
        before = len(self.sent)
        for _ in range(times):
            self.scheduler.tick()
        return [name for name, _ in self.sent[before:]]


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, Any]:
    config = write_config(
        tmp_path / "emugen.yaml", f"sqlite:///{tmp_path / 'e.db'}", interval=30
    )  # nothing falls due by itself during the test
    engine = engine_for(load_settings(config, env=False).database_url)
    init_db(engine)
    return config, engine


def _count(engine: Any, model: Any) -> int:
    with read_session(engine) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_on_a_fresh_store_the_first_companies_tick_goes_out_at_once(
    store: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, _ = store
    beat = Beat(config, monkeypatch)
    assert beat.tick() == ["generate-companies"]  # not an interval (30 s) later
    # the first events tick is right behind it (held until the companies are in silver), not
    # an interval later: a new fleet's first gold waits for neither stream's cadence
    assert 0 < beat.due_in("generate-events") <= HOLD_RETRY_S + 0.5


def test_an_events_tick_is_held_without_a_seq_until_companies_reach_silver_then_is_not_empty(
    store: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, engine = store
    settings = load_settings(config, env=False)
    beat = Beat(config, monkeypatch)
    assert beat.tick() == ["generate-companies"]
    ((_, (_, tick)),) = beat.sent
    landed = generate_and_land(engine, settings, Stream.companies, datetime.fromisoformat(tick))

    beat.make_due("generate-events")
    assert beat.tick() == []  # the company batch is in bronze only: held
    assert 0 < beat.due_in("generate-events") <= HOLD_RETRY_S + 0.5  # asked again soon
    assert _count(engine, BatchRow) == 1 and _count(engine, SkippedTick) == 0  # no seq, no skip

    refine_and_build(engine, landed.batch_id)
    with read_session(engine) as session:
        assert usable_companies(session) > 0
    beat.make_due("generate-events")
    assert beat.tick() == ["generate-events"]
    name, (stream, at) = beat.sent[-1]
    events = generate_and_land(engine, settings, Stream.events, datetime.fromisoformat(at))
    assert events.batch_id == "events-000000001"  # the held tick used no seq
    assert events.record_count > 0


def test_a_store_that_already_has_companies_keeps_beats_cadence(
    store: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, engine = store
    settings = load_settings(config, env=False)
    landed = generate_and_land(
        engine, settings, Stream.companies, datetime.now(UTC) - timedelta(minutes=1)
    )
    refine_and_build(engine, landed.batch_id)
    beat = Beat(config, monkeypatch)
    assert beat.tick() == []  # nothing due: no extra companies tick on a restart
    beat.make_due("generate-events")
    assert beat.tick() == ["generate-events"]
