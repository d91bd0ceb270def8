"""The backpressure gate: is the pipeline keeping up, or should this tick be skipped?

And one hold that is not a skip: an events tick waits while no company is in silver.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from emugen.db.models import BatchRow
from emugen.db.session import engine_for, read_session
from emugen.fleet.control import is_paused, record_skip
from emugen.fleet.names import PIPELINE_QUEUE, QUEUES
from emugen.pipeline.watermark import usable_companies
from emugen.settings import Fleet, Settings
from emugen.vocabulary import Stream

logger = logging.getLogger("emugen.backpressure")
HOLD_RETRY_S = 1.0  # a held events tick is due again this soon

# kombu's Redis transport keeps each priority level in its own list: name, name\x06\x163, ...
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (0, 3, 6, 9)


class ListLength(Protocol):
    def llen(self, name: str) -> Any: ...


def priority_keys(queue: str) -> list[str]:
    return [queue if step == 0 else f"{queue}{_PRIORITY_SEP}{step}" for step in _PRIORITY_STEPS]


def queue_depth(redis: ListLength, queue: str = PIPELINE_QUEUE) -> int:
    """Messages waiting in `queue`, every priority level included (prefetched ones are not)."""
    return sum(int(redis.llen(key)) for key in priority_keys(queue))


def pipeline_depth(app: Any, queue: str = PIPELINE_QUEUE) -> int:
    """LLEN of the pipeline queue (or `queue`; all priorities) on `app`'s broker; 0 for
    non-Redis brokers."""
    # from the app's pool: beat asks on every tick, a fresh connection each time adds up
    with app.pool.acquire(block=True, timeout=5) as connection:
        client = getattr(connection.default_channel, "client", None)
        return queue_depth(client, queue) if client is not None and hasattr(client, "llen") else 0


def purge_queues(redis: Any) -> int:
    """Delete every queued emugen message (after a clean); how many there were."""
    keys = [key for queue in QUEUES for key in priority_keys(queue)]
    count = sum(int(redis.llen(key)) for key in keys)
    redis.delete(*keys)
    return count


def in_flight(session: Session) -> int:
    """Batches landed in bronze but not yet in gold (failed ones excluded)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(BatchRow)
            .where(BatchRow.status.in_(("bronze", "silver")))
        )
        or 0
    )


@dataclass(frozen=True)
class Skip:
    reason: str  # queue_depth | in_flight
    detail: str


def gate(limits: Fleet, depth: int, flight: int) -> Skip | None:
    """None when a new batch may be generated, else why not (pure: the caller measures)."""
    if depth >= limits.max_queue_depth:
        return Skip(
            "queue_depth",
            f"pipeline queue holds {depth} messages, "
            f"limit fleet.max_queue_depth={limits.max_queue_depth}",
        )
    if flight >= limits.max_in_flight:
        return Skip(
            "in_flight",
            f"{flight} batches are generated but not yet in gold, "
            f"limit fleet.max_in_flight={limits.max_in_flight}",
        )
    return None


def tick_hold(
    session: Session, limits: Fleet, depth: Callable[[], int], paused_detail: str
) -> Skip | None:
    """Why a tick must not become a batch now, or None to go on (reads only).

    The broker is only asked for the queue depth when the fleet is not paused.
    """
    return (
        Skip("paused", paused_detail)
        if is_paused(session)
        else gate(limits, depth(), in_flight(session))
    )


def hold_tick(
    session: Session,
    limits: Fleet,
    depth: Callable[[], int],
    stream: str,
    at: datetime,
    paused_detail: str,
) -> Skip | None:
    """`tick_hold`, with the skip recorded in the caller's transaction.

    Beat asks before sending a tick and the worker again before generating it.
    """
    skip = tick_hold(session, limits, depth, paused_detail)
    if skip is not None:
        record_skip(session, stream, at, skip.reason, skip.detail)
    return skip


class CompaniesFirst:
    """Beat's rule that companies come first: an events batch picks its drivers among the
    companies already in silver, so one generated before any is there is empty.

    On a store with none, beat's first tick makes the companies entry due at once and the
    events entry due right after it (`start`); each events tick is held (`hold`: unsent, so
    no seq used and no skip recorded) and due again HOLD_RETRY_S later, until a company batch
    has reached silver.
    """

    def __init__(self) -> None:
        self.started = False
        self.holding = False  # said once per hold in the log, not every second

    def missing(self, settings: Settings | None) -> bool:
        """True while no company is in silver (a database error counts as False)."""
        if settings is None:
            return False
        try:
            with read_session(engine_for(settings.database_url)) as session:
                return usable_companies(session) == 0
        except Exception:  # noqa: BLE001 - never hold the fleet on a database hiccup
            logger.exception("could not tell whether a company is in silver; not holding")
            return False

    def start(self, beat: Any) -> None:
        """Once, at beat's first tick: on a store without companies, send theirs now, and make
        the first events tick due right behind it (held until the companies are in silver), so
        a new fleet's first gold does not wait out a whole events interval."""
        if not self.started:
            self.started = True
            if self.missing(beat.settings):
                _due_in(beat, f"generate-{Stream.companies.value}", 0.0)
                _due_in(beat, f"generate-{Stream.events.value}", HOLD_RETRY_S)

    def hold(self, beat: Any, name: str) -> bool:
        """Whether to hold back this events tick (entry `name`); if so it is due again soon."""
        held = self.missing(beat.settings)
        if held and not self.holding:
            logger.info(
                "events tick held: no company is in silver yet, so its batch would be "
                "empty; it goes out once the first company batch is (no seq used)"
            )
        self.holding = held
        if held:
            _due_in(beat, name, HOLD_RETRY_S)
        return held


def _due_in(beat: Any, name: str, seconds: float) -> None:
    """Make beat's entry `name` due `seconds` from now (its interval counts from then on)."""
    entry = beat.schedule.get(name)
    if entry is not None:
        entry.last_run_at = beat.app.now() - entry.schedule.run_every + timedelta(seconds=seconds)
        beat._heap = None  # Celery's Scheduler re-plans every due time at its next tick
