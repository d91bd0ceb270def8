"""Run batches through every layer in-process (no broker): the floor the fleet is compared with."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from emugen.db.session import write_session
from emugen.pipeline import gold, silver
from emugen.pipeline.bronze import Landed, Origin, generate_and_land
from emugen.settings import Settings
from emugen.sinks.lander import land
from emugen.vocabulary import Mode, Stream

STREAM_ORDER = (Stream.companies, Stream.events)  # events need companies in silver first


@dataclass(frozen=True)
class Processed:
    landed: Landed
    valid: int
    quarantined: int
    seconds: float


def refine_and_build(engine: Engine, batch_id: str) -> tuple[int, int]:
    """Silver then gold, each in its own transaction, as the fleet's chain runs them."""
    with write_session(engine) as session:
        refined = silver.run(session, batch_id)
    with write_session(engine) as session:
        gold.run(session, batch_id)
    return refined.rows_out, refined.rows_in - refined.rows_out


class TickClock:
    """Distinct, increasing tick times: the tick key (stream, scheduled_at) must never repeat."""

    def __init__(self) -> None:
        self.last = datetime.min.replace(tzinfo=UTC)

    def next(self) -> datetime:
        now = datetime.now(UTC).replace(microsecond=datetime.now(UTC).microsecond // 1000 * 1000)
        self.last = max(now, self.last + timedelta(milliseconds=1))
        return self.last


def run_pipeline(
    engine: Engine,
    settings: Settings,
    batches: int,
    streams: tuple[Stream, ...] = STREAM_ORDER,
    *,
    mode: Mode | None = None,
    size: int | None = None,
) -> list[Processed]:
    """Land, refine and build `batches` batches of each stream, companies first each round."""
    clock, done = TickClock(), []
    for _ in range(batches):
        for stream in streams:
            started = time.perf_counter()
            landed = generate_and_land(
                engine,
                settings,
                stream,
                clock.next(),
                mode=mode,
                size=size,
                origin=Origin("in-process"),
            )
            land(engine, settings.landing, landed.batch_id)
            valid, quarantined = refine_and_build(engine, landed.batch_id)
            done.append(Processed(landed, valid, quarantined, time.perf_counter() - started))
    return done
