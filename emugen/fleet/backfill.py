"""The backfill command's loop: send ticks to the fleet as fast as it takes them, until gold.

The store is the only record of progress (a tick is done when its batch is in gold), so the
command can be killed and rerun: ticks already in gold are not sent again, and half-done
ones are sent again for a worker to finish. Sending stops at the fleet's limits (queued
messages, ticks sent but not in gold), and an event tick is sent only once the company
batches it references are in silver.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, literal, or_, select

from emugen.backfill.plan import Plan
from emugen.backfill.progress import Progress, Snapshot
from emugen.backfill.tick import CLAIM, SETTLED, check_same
from emugen.backfill.ticks import Tick
from emugen.db.models import BatchRow, ControlState, LandedFile, LandingFailure
from emugen.db.session import read_session
from emugen.errors import BackfillInputError
from emugen.fleet.backpressure import gate, pipeline_depth
from emugen.fleet.names import BACKFILL_TICK, GENERATE_QUEUE
from emugen.settings import Fleet
from emugen.vocabulary import Stream

STALL_FACTOR = 10  # no tick reaching gold for this many fleet.stuck_after: give up
UNLANDED = "unlanded"  # in gold, but landing is on and its file is not landed yet


class Fleetlike(Protocol):
    def send(self, message: dict[str, Any]) -> None: ...

    def depth(self) -> int: ...


class CeleryFleet:
    """Ticks as `emugen.backfill_tick` messages on the app's broker (the generate queue)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def send(self, message: dict[str, Any]) -> None:
        self.app.send_task(BACKFILL_TICK, args=(message,))

    def depth(self) -> int:
        return pipeline_depth(self.app, GENERATE_QUEUE)


@dataclass
class Outcome:
    total: int
    gold: int = 0
    records: int = 0
    failed: list[str] = field(default_factory=list)
    unlanded: list[str] = field(default_factory=list)  # in gold, file not landed
    blocked: list[str] = field(default_factory=list)  # behind a failed company batch
    stalled_s: float | None = None  # set when no tick reached gold for this long
    seconds: float = 0.0
    sent: int = 0

    @property
    def complete(self) -> bool:
        return self.gold == self.total


def store_state(
    engine: Engine, plan: Plan, with_spec: bool = False
) -> dict[str, tuple[str, int, str]]:
    """batch id -> (status, record count, spec or "") for every batch at the plan's seqs.

    The loop asks without the specs: reading every spec a few times a second would cost more
    than the rest of the loop."""
    found: dict[str, tuple[str, int, str]] = {}
    spec_column = BatchRow.spec if with_spec else literal("")
    # with landing on, a tick is done once its file is landed too: a batch in gold whose
    # landing failed (the zone unreachable from that worker) reads as UNLANDED and is sent
    # again, and a resent tick only lands the file (its stages find their work done)
    landed = LandedFile.batch_id.is_not(None) if plan.settings.landing.enabled else literal(True)
    with read_session(engine) as session:
        for stream in Stream:
            seqs = plan.ticks.seqs(stream)
            if not len(seqs):
                continue
            rows = session.execute(
                select(
                    BatchRow.batch_id, BatchRow.status, BatchRow.record_count, spec_column, landed
                )
                .outerjoin(LandedFile, LandedFile.batch_id == BatchRow.batch_id)
                .where(
                    BatchRow.stream == stream.value,
                    BatchRow.seq >= int(seqs[0]),
                    BatchRow.seq <= int(seqs[-1]),
                )
            )
            found.update(
                {
                    b: (UNLANDED if s == "gold" and not done else s, n, spec)
                    for b, s, n, spec, done in rows
                }
            )
    return found


def landing_errors(engine: Engine, batch_ids: list[str]) -> list[str]:
    """The last landing error of each of these batches that has one (the first few)."""
    with read_session(engine) as session:
        return list(
            session.scalars(
                select(LandingFailure.error)
                .where(LandingFailure.batch_id.in_(batch_ids[:100]))
                .limit(3)
            )
        )


def running(engine: Engine, batch_ids: list[str], within: timedelta) -> set[str]:
    """Those of these ticks a worker is still on: started (claimed) or past a stage within
    `within` (fleet.stuck_after). Older than that, the worker is taken for lost, as the
    reaper takes a batch idle that long before a stage."""
    if not batch_ids:
        return set()
    since = datetime.now(UTC) - within
    found: set[str] = set()
    with read_session(engine) as session:
        for start in range(0, len(batch_ids), 500):
            part = batch_ids[start : start + 500]
            claims = session.scalars(
                select(ControlState.key).where(
                    ControlState.key.in_([CLAIM + b for b in part]),
                    ControlState.updated_at >= since,
                )
            )
            found.update(key.removeprefix(CLAIM) for key in claims)
            found.update(
                session.scalars(
                    select(BatchRow.batch_id).where(
                        BatchRow.batch_id.in_(part),
                        BatchRow.status.in_(("bronze", "silver")),
                        or_(BatchRow.bronze_at >= since, BatchRow.silver_at >= since),
                    )
                )
            )
    return found


def settled_companies(engine: Engine, upto: int) -> tuple[int, list[int]]:
    """How many company batches from seq 1 are settled in silver, and the failed among them."""
    prefix, failed = 0, []
    with read_session(engine) as session:
        for seq, status in session.execute(
            select(BatchRow.seq, BatchRow.status)
            .where(BatchRow.stream == Stream.companies.value, BatchRow.seq <= upto)
            .order_by(BatchRow.seq)
        ):
            if seq != prefix + 1 or status not in SETTLED:
                break
            prefix = seq
            if status == "failed":
                failed.append(seq)
    return prefix, failed


def check_store(engine: Engine, plan: Plan) -> None:
    """Refuse before sending anything: other batches at the plan's seqs, or event ticks whose
    companies neither the plan nor the store will provide."""
    state = store_state(engine, plan, with_spec=True)
    for tick in plan.ticks:
        if tick.batch_id in state:
            check_same(state[tick.batch_id][2], tick.spec, tick.batch_id)
    planned = set(plan.ticks.seqs(Stream.companies).tolist())
    with read_session(engine) as session:
        stored = set(
            session.scalars(
                select(BatchRow.seq).where(
                    BatchRow.stream == Stream.companies.value, BatchRow.seq <= plan.companies_needed
                )
            )
        )
    missing = sorted(set(range(1, plan.companies_needed + 1)) - planned - stored)
    if missing:
        raise BackfillInputError(
            f"--streams: the event ticks reference company batches 1..{plan.companies_needed}, "
            f"and {len(missing):,} of them (seq {missing[0]}…{missing[-1]}) are neither in the "
            "store nor in this range; add companies (--streams companies,events) and start "
            "--from at the clock's start"
        )


class Backfill:
    """Sends the plan's ticks and watches the store until every one is in gold (or cannot be)."""

    def __init__(
        self,
        engine: Engine,
        plan: Plan,
        fleet: Fleetlike,
        limits: Fleet,
        progress: Progress | None = None,
        *,
        poll_s: float = 0.25,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine, self.plan, self.fleet, self.limits = engine, plan, fleet, limits
        self.progress = progress
        self.poll_s, self.now = poll_s, now
        self.resend_s = limits.stuck_after.total_seconds()
        self.stall_s = STALL_FACTOR * self.resend_s
        self.sent: dict[str, float] = {}  # batch id -> when last sent
        self._prefix = 0  # company batches 1..n settled in silver, as last read
        self.fingerprint = plan.settings.fingerprint()

    def run(self) -> Outcome:
        check_store(self.engine, self.plan)
        started = self.now()
        state = store_state(self.engine, self.plan)
        already = {b for b, v in state.items() if v[0] == "gold"}
        outcome, last_gold, best = Outcome(len(self.plan.ticks)), started, -1
        while True:
            state = store_state(self.engine, self.plan)
            outcome = self._tally(state, already, started)
            if outcome.gold > best:
                best, last_gold = outcome.gold, self.now()
            if outcome.gold + len(outcome.failed) + len(outcome.blocked) == outcome.total:
                break
            if self.now() - last_gold > self.stall_s:
                outcome.stalled_s = self.now() - last_gold
                break
            self._send_some(state, outcome)
            time.sleep(self.poll_s)
        outcome.sent = len(self.sent)
        self._show(outcome, already, state, final=True)
        return outcome

    def _tally(
        self, state: dict[str, tuple[str, int, str]], already: set[str], started: float
    ) -> Outcome:
        outcome = Outcome(len(self.plan.ticks), seconds=self.now() - started)
        prefix, failed_companies = settled_companies(self.engine, self.plan.companies_needed)
        first_failed = failed_companies[0] if failed_companies else None
        for tick in self.plan.ticks:
            status = state.get(tick.batch_id, ("", 0, ""))[0]
            if status == "gold":
                outcome.gold += 1
                outcome.records += tick.records
            elif status == "failed":
                outcome.failed.append(tick.batch_id)
            elif status == UNLANDED:
                outcome.unlanded.append(tick.batch_id)
            elif first_failed is not None and tick.companies_before >= first_failed:
                outcome.blocked.append(tick.batch_id)
        self._prefix = prefix
        self._show(outcome, already, state)
        return outcome

    def _show(
        self,
        outcome: Outcome,
        already: set[str],
        state: dict[str, tuple[str, int, str]],
        final: bool = False,
    ) -> None:
        if self.progress is None:
            return
        fresh = [
            t
            for t in self.plan.ticks
            if t.batch_id not in already and state.get(t.batch_id, ("",))[0] == "gold"
        ]
        self.progress.show(
            Snapshot(
                outcome.gold,
                outcome.total,
                outcome.records,
                self.plan.records,
                len(fresh),
                sum(t.records for t in fresh),
                sum(t.records for t in fresh if t.stream is Stream.events),
                outcome.seconds,
            ),
            final=final,
        )

    def _due(self, tick: Tick, status: str, queued: int) -> bool:
        """Whether to send the tick now, or (when sent before) again: not done, not waiting
        on companies, and either never sent or overdue.

        A tick sent before is overdue only when the queue is empty: while messages wait, it
        may be one of them (a long queue is not a lost tick), and copies would only make the
        queue longer. An overdue tick is sent again unless a worker is still on it (see
        `running`): it was lost with a worker (kill -9), or its landing failed."""
        if status in ("gold", "failed"):
            return False
        if tick.stream is Stream.events and tick.companies_before > self._prefix:
            return False
        sent = self.sent.get(tick.batch_id)
        return sent is None or (queued == 0 and self.now() - sent > self.resend_s)

    def _send_some(self, state: dict[str, tuple[str, int, str]], outcome: Outcome) -> None:
        blocked = set(outcome.blocked)
        done = {
            t.batch_id
            for t in self.plan.ticks
            if state.get(t.batch_id, ("",))[0] in ("gold", "failed")
        }
        flight = sum(1 for b in self.sent if b not in done)
        depth = queued = self.fleet.depth()
        due = [
            t
            for t in self.plan.ticks
            if t.batch_id not in blocked and self._due(t, state.get(t.batch_id, ("",))[0], queued)
        ]
        busy = running(
            self.engine,
            [t.batch_id for t in due if t.batch_id in self.sent],
            self.limits.stuck_after,
        )
        for tick in due:
            if tick.batch_id in busy:
                continue
            if gate(self.limits, depth, flight) is not None:
                return
            self.fleet.send(tick.message(self.fingerprint))
            if tick.batch_id not in self.sent:
                flight += 1
            self.sent[tick.batch_id] = self.now()
            depth += 1
