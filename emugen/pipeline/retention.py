"""Retention: prune old emulated batches in short transactions; gold and companies stay.

A batch of emulated mode that reached gold longer ago than `fleet.retain_batches_for` loses
its bronze rows, its truth, its silver events, its quarantine rows and finally its batch row.
Kept forever:

- gold (a *new* batch adds only to the windows it touches, which are recent; the record of
  which drivers a pruned batch counted goes with it);
- `silver_companies`: the company dimension that live events reference (silver's referential
  check and gold's per-region join need every company ever onboarded);
- the newest batch of each stream, so `seq` and the next company ordinal keep counting up;
- failed batches (an alarm to read, not noise) and production batches.

A pruned batch's landing-zone file and manifest go with it (when `landing` is given).

Company batch rows go only as a contiguous prefix in onboarding order, and the same
transaction moves a *company floor* (ordinal and the excluded ordinals below it) into
`control_state`: the company watermark (pipeline/watermark.py) starts from that floor (or from
its own checkpoint of the settled prefix, whichever is higher), so later event batches still
see every settled company.

Every transaction deletes at most about `chunk_rows` rows, so the SQLite write lock is never
held for long; a run stops after `budget_s` and the next run carries on.

What was pruned is tallied in `control_state` (`retention_tally`), in the transaction that
deletes it, so a store can still be audited whole after pruning (the soak's verdict does).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Delete, Engine, and_, delete, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from emugen.db.ledger import ArrivalEntry
from emugen.db.models import (
    BatchRow,
    BronzeRecord,
    ConfigReload,
    ControlState,
    GoldWindowDriver,
    InjectedDefect,
    PlannedCompany,
    Quarantine,
    SilverEvent,
    SkippedTick,
)
from emugen.db.session import write_session
from emugen.errors import LandingError
from emugen.pipeline.watermark import pruned_floor, raise_floor
from emugen.settings import Landing
from emugen.sinks.lander import remove_files
from emugen.vocabulary import Mode, Stream

logger = logging.getLogger("emugen.retention")

_PICK_LIMIT = 500  # batch ids per statement: under every backend's bound-parameter limit
_CHILD_TABLES = (
    BronzeRecord,
    InjectedDefect,
    ArrivalEntry,
    SilverEvent,
    Quarantine,
    PlannedCompany,
)
# control_state key prefix: the highest seq of each stream whose batch retention deleted, so
# a reader asking for a missing batch can tell "pruned" from "never was" (clean drops it)
PRUNED_THROUGH = "pruned_through:"


def pruned_through(session: Session, stream: str) -> int:
    """The highest seq of `stream` retention deleted (0 when it deleted none)."""
    value = session.scalar(
        select(ControlState.value).where(ControlState.key == PRUNED_THROUGH + stream)
    )
    return int(value) if value is not None else 0


def _note_pruned(session: Session, stream: Stream, ids: list[str]) -> None:
    seq = max(int(batch_id.rsplit("-", 1)[1]) for batch_id in ids)
    key = PRUNED_THROUGH + stream.value
    row = session.get(ControlState, key)
    if row is None:
        session.add(ControlState(key=key, value=str(seq), updated_at=datetime.now(UTC)))
    elif int(row.value) < seq:
        row.value, row.updated_at = str(seq), datetime.now(UTC)


TALLY = "retention_tally"


def tally(session: Session) -> dict[str, Any]:
    """What retention has deleted so far: per stream the batches and the sums of their
    record, valid and corrupted counts; the skipped ticks; the latest pruned event's epoch ms
    (gold windows up to it can no longer be recomputed from silver)."""
    raw = session.scalar(select(ControlState.value).where(ControlState.key == TALLY))
    found = json.loads(raw) if raw is not None else {}
    empty = {"batches": 0, "records": 0, "valid": 0, "corrupted": 0}
    return {
        "events": {**empty, **found.get("events", {})},
        "companies": {**empty, **found.get("companies", {})},
        "skipped_ticks": int(found.get("skipped_ticks", 0)),
        "events_max_ms": found.get("events_max_ms"),
    }


def _add_to_tally(
    session: Session,
    stream: Stream | None,
    ids: Sequence[str],
    skipped_ticks: int = 0,
    events_max_ms: int | None = None,
) -> None:
    """Add these batches (their rows still present) and skipped ticks to the tally."""
    now = tally(session)
    if stream is not None and ids:
        n, records, valid, corrupted = session.execute(
            select(
                func.count(),
                func.sum(BatchRow.record_count),
                func.sum(BatchRow.valid_count),
                func.sum(BatchRow.corrupted_count),
            ).where(BatchRow.batch_id.in_(ids))
        ).one()
        part = now[stream.value]
        for key, value in (
            ("batches", n),
            ("records", records),
            ("valid", valid),
            ("corrupted", corrupted),
        ):
            part[key] += int(value or 0)
    now["skipped_ticks"] += skipped_ticks
    if events_max_ms is not None:
        now["events_max_ms"] = max(events_max_ms, now["events_max_ms"] or events_max_ms)
    row = session.get(ControlState, TALLY)
    text, at = json.dumps(now), datetime.now(UTC)
    if row is None:
        session.add(ControlState(key=TALLY, value=text, updated_at=at))
    else:
        row.value, row.updated_at = text, at


@dataclass
class Pruned:
    batches: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    complete: bool = True  # False when the time budget ran out with work left

    def add(self, table: str, n: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + n

    def __str__(self) -> str:
        parts = [f"{self.batches} batches"] + [f"{n:,} {t}" for t, n in self.rows.items() if n]
        return "pruned " + ", ".join(parts) + ("" if self.complete else " (more left)")


def _eligible(stream: Stream, cutoff: datetime) -> ColumnElement[bool]:
    newest = select(func.max(BatchRow.seq)).where(BatchRow.stream == stream.value)
    return and_(
        BatchRow.stream == stream.value,
        BatchRow.mode == Mode.emulated.value,
        BatchRow.status == "gold",
        BatchRow.gold_at < cutoff,
        BatchRow.seq < newest.scalar_subquery(),
    )


def _pick_events(engine: Engine, cutoff: datetime, chunk_rows: int) -> list[tuple[str, int]]:
    with write_session(engine) as session:
        rows = session.execute(
            select(BatchRow.batch_id, BatchRow.record_count)
            .where(_eligible(Stream.events, cutoff))
            .order_by(BatchRow.seq)
            .limit(_PICK_LIMIT)
        ).all()
    return _fill(rows, chunk_rows)


def _pick_companies(engine: Engine, cutoff: datetime, chunk_rows: int) -> list[tuple[str, int]]:
    """The contiguous run of prunable company batches starting at the floor."""
    with write_session(engine) as session:
        floor, _ = pruned_floor(session)
        rows = session.execute(
            select(
                BatchRow.batch_id,
                BatchRow.record_count,
                BatchRow.first_ordinal,
                BatchRow.ordinal_count,
                _eligible(Stream.companies, cutoff),
            )
            .where(BatchRow.stream == Stream.companies.value, BatchRow.first_ordinal >= floor)
            .order_by(BatchRow.first_ordinal)
            .limit(_PICK_LIMIT)
        ).all()
    run, expected = [], floor
    for batch_id, records, first, count, ok in rows:
        if first != expected or not ok:
            break
        run.append((batch_id, records))
        expected += count
    return _fill(run, chunk_rows)


def _fill(rows: Sequence[Any], chunk_rows: int) -> list[tuple[str, int]]:
    """Leading batches up to about chunk_rows records (at least one)."""
    group: list[tuple[str, int]] = []
    total = 0
    for batch_id, records, *_ in rows:
        if group and total + records > chunk_rows:
            break
        group.append((batch_id, records))
        total += records
    return group


def _delete_group(
    engine: Engine,
    group: list[tuple[str, int]],
    chunk_rows: int,
    result: Pruned,
    stream: Stream,
    landing: Landing | None,
) -> None:
    ids = [batch_id for batch_id, _ in group]
    largest = max((records for _, records in group), default=0)
    max_ms = None
    if stream is Stream.events:  # read before the events go (a rerun after a crash finds less)
        with write_session(engine) as session:
            max_ms = session.scalar(
                select(func.max(SilverEvent.event_ms)).where(SilverEvent.batch_id.in_(ids))
            )
    # child rows in row_no windows: a 100k-record batch takes several short transactions
    for low in range(0, largest + 1, chunk_rows):
        with write_session(engine) as session:
            for table in _CHILD_TABLES:
                n = _deleted(
                    session,
                    delete(table).where(
                        table.batch_id.in_(ids),
                        table.row_no >= low,
                        table.row_no < low + chunk_rows,
                    ),
                )
                result.add(table.__tablename__, n)
    with write_session(engine) as session:
        if landing is not None:
            # files first, in the transaction that drops the batch rows: if the zone refuses,
            # the rows stay (and their files are still known) until a later run
            result.add("landing_files", remove_files(landing, session, ids))
        if stream is Stream.companies:
            raise_floor(session, ids)
        _note_pruned(session, stream, ids)
        # gold's record of which drivers these batches counted: their windows are old, no
        # new batch adds to them (see the docstring), so the record is no longer needed
        n = _deleted(session, delete(GoldWindowDriver).where(GoldWindowDriver.batch_id.in_(ids)))
        result.add(GoldWindowDriver.__tablename__, n)
        _add_to_tally(session, stream, ids, events_max_ms=max_ms)
        n = _deleted(session, delete(BatchRow).where(BatchRow.batch_id.in_(ids)))
        result.add(BatchRow.__tablename__, n)
        result.batches += n


def _deleted(session: Session, statement: Delete) -> int:
    """How many rows a DELETE removed (a DELETE's result is a CursorResult, typed as Result)."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount or 0


def _prune_log(engine: Engine, cutoff: datetime, chunk_rows: int, result: Pruned) -> None:
    """Old skipped ticks and config reloads (the latest accepted and rejected reload stay)."""
    with write_session(engine) as session:
        keep = [
            session.scalar(select(func.max(ConfigReload.id)).where(ConfigReload.accepted == flag))
            for flag in (True, False)
        ]
        n = _deleted(
            session,
            delete(ConfigReload).where(
                ConfigReload.at < cutoff, ConfigReload.id.not_in([k for k in keep if k])
            ),
        )
        result.add(ConfigReload.__tablename__, n)
    while True:
        with write_session(engine) as session:
            ids = list(
                session.scalars(
                    select(SkippedTick.id)
                    .where(SkippedTick.at < cutoff)
                    .order_by(SkippedTick.id)
                    .limit(min(chunk_rows, 900))
                )
            )
            if ids:
                session.execute(delete(SkippedTick).where(SkippedTick.id.in_(ids)))
                _add_to_tally(session, None, (), skipped_ticks=len(ids))
                result.add(SkippedTick.__tablename__, len(ids))
        if len(ids) < min(chunk_rows, 900):
            return


def prune(
    engine: Engine,
    retain_for: timedelta,
    *,
    now: datetime | None = None,
    chunk_rows: int = 20_000,
    budget_s: float = 10.0,
    landing: Landing | None = None,
) -> Pruned:
    """Delete what is older than `retain_for` (see the module docstring for what stays)."""
    cutoff = (now or datetime.now(UTC)) - retain_for
    deadline = time.monotonic() + budget_s
    result = Pruned()
    for stream, pick in ((Stream.events, _pick_events), (Stream.companies, _pick_companies)):
        while True:
            if time.monotonic() > deadline:
                result.complete = False
                return result
            group = pick(engine, cutoff, chunk_rows)
            if not group:
                break
            try:
                _delete_group(engine, group, chunk_rows, result, stream, landing)
            except LandingError as exc:
                logger.warning("retention: %s", exc)
                result.complete = False
                return result
    _prune_log(engine, cutoff, chunk_rows, result)
    return result
