"""One backfill tick on a worker: land the spec it was sent, then silver and gold (idempotent).

The message carries the whole spec, so nothing here reads the config's streams: the worker's
own config only says where its store and landing zone are. Each step checks what the store
already holds, so a redelivered, resent or half-done tick finishes the batch and never
makes a second one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from emugen.db.models import BatchRow, ControlState
from emugen.db.session import read_session, write_session
from emugen.db.stage_log import stage_done
from emugen.errors import BackfillConflict, BackfillNotReady
from emugen.generate import BatchSpec, draft, gc_paused
from emugen.pipeline import bronze, gold, silver
from emugen.pipeline.watermark import load_exclusions
from emugen.settings import Landing
from emugen.sinks.lander import land
from emugen.vocabulary import Stream

SETTLED = ("silver", "gold", "failed")  # a company batch no event batch waits for any more
# control_state key of a tick a worker has started and not finished: the command does not send
# such a tick again while it is younger than fleet.stuck_after (its bronze transaction, which
# can take minutes for a large batch, shows nothing in the store until it commits)
CLAIM = "backfill:"


@dataclass(frozen=True)
class TickMessage:
    """What the command sends for one tick (see plan.Tick.message)."""

    spec: BatchSpec
    scheduled_at: datetime
    fingerprint: str
    companies_before: int

    @classmethod
    def parse(cls, message: dict[str, Any]) -> TickMessage:
        return cls(
            BatchSpec.model_validate_json(message["spec"]),
            datetime.fromisoformat(message["scheduled_at"]),
            str(message["fingerprint"]),
            int(message.get("companies_before", 0)),
        )

    @property
    def batch_id(self) -> str:
        return bronze.batch_id_for(self.spec.stream, self.spec.seq)


def companies_settled(engine: Engine, upto: int) -> bool:
    """Whether company batches 1..upto are all in silver (or past it)."""
    if upto <= 0:
        return True
    with read_session(engine) as session:
        settled = session.scalar(
            select(func.count())
            .select_from(BatchRow)
            .where(
                BatchRow.stream == Stream.companies.value,
                BatchRow.seq <= upto,
                BatchRow.status.in_(SETTLED),
            )
        )
    return settled == upto


def check_same(stored: str, spec: BatchSpec, batch_id: str) -> None:
    """A batch already at this seq must be this very spec: backfill never mixes histories."""
    if BatchSpec.model_validate_json(stored) != spec:
        raise BackfillConflict(
            f"the store already holds {batch_id} with another spec (another config, seed or "
            "clock made it); backfill into a fresh store, or use the config that made it"
        )


def ensure_bronze(engine: Engine, tick: TickMessage, worker: str | None) -> str:
    """The batch in bronze with all its rows: landed now, finished, or found. Its status."""
    batch_id = tick.batch_id
    with write_session(engine) as session:
        row = session.get(BatchRow, batch_id)
        if row is not None:
            check_same(row.spec, tick.spec, batch_id)
            if row.status == "bronze":
                bronze.run(session, batch_id)  # rows already there: left alone
            return row.status
    with read_session(engine) as session:  # the companies' rejections, as this store has them
        load_exclusions(session, tick.spec)
    started = time.perf_counter()
    with gc_paused():  # outside the write transaction: SQLite's one writer is not held for it
        planned = draft(tick.spec)
    generate_ms = (time.perf_counter() - started) * 1000
    try:
        with write_session(engine) as session, gc_paused():
            bronze.land_bronze(
                session,
                planned,
                fingerprint=tick.fingerprint,
                scheduled_at=tick.scheduled_at,
                generate_ms=generate_ms,
                origin=bronze.Origin(worker),
            )
    except IntegrityError:  # a resent copy of this tick landed it first
        with read_session(engine) as session:
            stored = session.scalar(select(BatchRow.spec).where(BatchRow.batch_id == batch_id))
        if stored is None:
            raise BackfillConflict(
                f"the store already holds another {tick.spec.stream.value} batch at the tick "
                f"{tick.scheduled_at.isoformat()} (a live run?); backfill into a fresh store"
            ) from None
        check_same(stored, tick.spec, batch_id)
        return "bronze"
    stage_done(
        batch_id,
        "bronze",
        len(planned),
        (time.perf_counter() - started) * 1000,
        seq=tick.spec.seq,
        mode=tick.spec.mode.value,
        injected=len(planned.truth),
        backfill=True,
    )
    return "bronze"


def run_tick(engine: Engine, landing: Landing, tick: TickMessage, worker: str | None = None) -> str:
    """Bronze, the landing file, silver and gold for one tick; the batch's final status.

    Raises BackfillNotReady when an event tick's companies are not settled in silver yet:
    silver's reference check would otherwise reject events a live run keeps.
    """
    if tick.spec.stream is Stream.events and not companies_settled(engine, tick.companies_before):
        raise BackfillNotReady(
            f"{tick.batch_id} needs company batches 1..{tick.companies_before} in silver first"
        )
    claim(engine, tick.batch_id, worker)
    status = ensure_bronze(engine, tick, worker)
    if status == "failed":
        with write_session(engine) as session:
            release(session, tick.batch_id)
        return status
    if landing.enabled:
        land(engine, landing, tick.batch_id)
    if status == "bronze":
        with write_session(engine) as session:
            silver.run(session, tick.batch_id)
    with write_session(engine) as session:
        gold.run(session, tick.batch_id)
        release(session, tick.batch_id)
    return "gold"


def claim(engine: Engine, batch_id: str, worker: str | None) -> None:
    """Record that a worker started this tick now (committed at once, so the command sees it)."""
    with write_session(engine) as session:
        row = session.get(ControlState, CLAIM + batch_id)
        now = datetime.now(UTC)
        if row is None:
            session.add(ControlState(key=CLAIM + batch_id, value=worker or "", updated_at=now))
        else:
            row.value, row.updated_at = worker or "", now


def release(session: Session, batch_id: str) -> None:
    """Forget the tick's claim: it is finished (its batch row says how)."""
    session.execute(delete(ControlState).where(ControlState.key == CLAIM + batch_id))
