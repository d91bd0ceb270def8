"""Silver: validate bronze by the contract, de-duplicate, check references, quarantine."""

from __future__ import annotations

import json
import time
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from emugen.contract import KEY_FIELD, Context, Reason, Rejection, check, parse
from emugen.db.bronze_rows import bronze_parts
from emugen.db.bulk import bulk_insert, insert_cache
from emugen.db.columns import sqlite_text, sqlite_text_from_stamp
from emugen.db.models import BatchRow, PlannedCompany, Quarantine, SilverCompany, SilverEvent
from emugen.db.stage_log import stage_done
from emugen.db.stream import StreamLoad, fast_or_exact
from emugen.errors import BatchNotFound, StageOrderError
from emugen.generate import BatchSpec, gc_paused
from emugen.pipeline.arrivals import drift_field, earliest_valid, redelivered_rows, without_drift
from emugen.pipeline.fastpath import company_of, event_row, match_event
from emugen.pipeline.repeats import QUARANTINE_COLUMNS, quarantine_repeats
from emugen.pipeline.stage import StageResult, since_ms
from emugen.vocabulary import EPOCH, MS, Stream

CHUNK = 10_000
# the index entries a valid row adds (event_id ~60 B, (batch_id, row_no) ~60 B, event_ms ~20 B,
# at a B-tree's fill): the page cache the batch's inserts ask for (db/bulk.insert_cache)
CACHE_PER_ROW = 160
PAGE = 25_000  # bronze rows per query on PostgreSQL (see bronze_rows.bronze_parts)
_IN_LIMIT = 900  # stay under every backend's bound-parameter limit

COMPANY_COLUMNS = (
    "company_id",
    "company_name",
    "region",
    "active",
    "onboarded_at",
    "onboarded_ms",
    "drivers_count",
    "trucks_count",
    "batch_id",
    "row_no",
)
EVENT_COLUMNS = (
    "event_id",
    "company_id",
    "driver_id",
    "truck_id",
    "event_type",
    "event_timestamp",
    "event_ms",
    "lat",
    "lon",
    "batch_id",
    "row_no",
)


@dataclass(frozen=True)
class Refined:
    batch_id: str
    valid: int
    quarantined: int
    by_reason: dict[str, int]
    already_done: bool = False


def _chunks(values: list[Any], size: int = _IN_LIMIT) -> Iterable[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _existing(session: Session, column: Any, keys: list[str], *where: Any) -> set[str]:
    found: set[str] = set()
    for part in _chunks(keys):
        found.update(session.scalars(select(column).where(column.in_(part), *where)))
    return found


def _company_row(t: dict[str, Any], batch_id: str, row_no: int) -> tuple[Any, ...]:
    at = t["onboarded_at"]
    return (
        t["company_id"],
        t["company_name"],
        t["region"],
        t["active"],
        at,
        (at - EPOCH) // MS,
        t["drivers_count"],
        t["trucks_count"],
        batch_id,
        row_no,
    )


def _event_row(t: dict[str, Any], batch_id: str, row_no: int) -> tuple[Any, ...]:
    at, loc = t["event_timestamp"], t["location"]
    lat, lon = (loc["lat"], loc["lon"]) if loc else (None, None)
    return (
        t["event_id"],
        t["company_id"],
        t["driver_id"],
        t["truck_id"],
        t["event_type"],
        at,
        (at - EPOCH) // MS,
        lat,
        lon,
        batch_id,
        row_no,
    )


def _event_row_sqlite(t: dict[str, Any], batch_id: str, row_no: int, stamp: str) -> tuple[Any, ...]:
    """As _event_row, each value as SQLite stores it (what the column types would bind)."""
    at, loc = t["event_timestamp"], t["location"]
    lat, lon = (float(loc["lat"]), float(loc["lon"])) if loc else (None, None)
    return (
        t["event_id"],
        t["company_id"],
        t["driver_id"],
        t["truck_id"],
        t["event_type"],
        sqlite_text_from_stamp(stamp) or sqlite_text(at),
        (at - EPOCH) // MS,
        lat,
        lon,
        batch_id,
        row_no,
    )


def _excluded_ordinals(session: Session, batch: BatchRow) -> str:
    """The ordinals this company batch onboarded that silver did not take (JSON): events must
    never name them. The planned ids were recorded at landing."""
    planned = session.execute(
        select(PlannedCompany.row_no, PlannedCompany.company_id)
        .where(PlannedCompany.batch_id == batch.batch_id)
        .order_by(PlannedCompany.row_no)
    )
    landed = set(
        session.scalars(
            select(SilverCompany.company_id).where(SilverCompany.batch_id == batch.batch_id)
        )
    )
    return json.dumps(
        [batch.first_ordinal + row_no for row_no, company_id in planned if company_id not in landed]
    )


def run(session: Session, batch_id: str) -> StageResult:
    """The stage contract: validate a bronze batch into silver and quarantine."""
    started = time.perf_counter()
    refined = refine_silver(session, batch_id)
    return StageResult(
        batch_id,
        "silver",
        refined.valid + refined.quarantined,
        refined.valid,
        since_ms(started),
        "already in silver" if refined.already_done else "",
    )


def refine_silver(session: Session, batch_id: str) -> Refined:
    """Validate every bronze row of the batch into silver or quarantine (idempotent).

    The batch row is locked first (FOR UPDATE on PostgreSQL; SQLite's write transaction is
    already exclusive), so a concurrent second run waits and then finds the work done.
    """
    with gc_paused():  # ~100k short-lived dicts; see generate.gc_paused
        return _refine(session, batch_id)


@dataclass
class _Pass:
    """One batch's way through silver: where its valid rows go, and what was decided so far."""

    batch_id: str
    spec: BatchSpec
    target: Any  # SilverEvent or SilverCompany
    columns: tuple[str, ...]
    fast_text: bool  # events on SQLite: timestamps stored as the text they arrived as
    known: dict[str, bool] = field(default_factory=dict)  # company id -> in silver (events)
    accepted: array[int] = field(default_factory=lambda: array("q"))  # passed, in row order
    reasons: Counter[str] = field(default_factory=Counter)
    load: StreamLoad | None = None  # PostgreSQL's first try: one open COPY (db/stream.py)
    redelivered: frozenset[int] = frozenset()  # rows that are copies of earlier batches' rows
    dropped: int = 0  # ... of which this many were seen (dropped, not quarantined)

    @property
    def stream(self) -> Stream:
        return self.spec.stream

    @property
    def key_column(self) -> Any:
        return self.target.event_id if self.stream is Stream.events else self.target.company_id


def _refine(session: Session, batch_id: str) -> Refined:
    started = time.perf_counter()
    batch = _locked_bronze(session, batch_id)
    if isinstance(batch, Refined):
        return batch
    with insert_cache(session, batch.record_count * CACHE_PER_ROW):
        work = _refine_batch(session, batch)
        repeats = quarantine_repeats(
            session,
            work.target,
            work.key_column,
            KEY_FIELD[work.stream],
            batch_id,
            work.stream,
            work.accepted,
        )
    if repeats:
        work.reasons[Reason.duplicate.value] += repeats
    return _record(session, batch, work, repeats, started)


def _refine_batch(session: Session, batch: BatchRow) -> _Pass:
    """The batch's rows refined: on PostgreSQL through one COPY first (db/stream.py)."""
    if session.get_bind().dialect.name == "postgresql":
        return fast_or_exact(
            session,
            lambda: _refine_rows(session, _start(session, batch, True)),
            lambda: _refine_rows(session, _start(session, batch)),
        )
    return _refine_rows(session, _start(session, batch))


def _refine_rows(session: Session, work: _Pass) -> _Pass:
    """Every bronze row of the batch through the contract, a chunk at a time."""
    flush = work.load.flush if work.load is not None else None
    for part in bronze_parts(session, work.batch_id, CHUNK, PAGE, flush):
        _refine_chunk(session, work, part)
    if work.load is not None:
        work.load.flush()
    return work


def _locked_bronze(session: Session, batch_id: str) -> BatchRow | Refined:
    """The batch row, locked; or what an earlier run refined when it is done already."""
    batch = session.execute(
        select(BatchRow).where(BatchRow.batch_id == batch_id).with_for_update()
    ).scalar_one_or_none()
    if batch is None:
        raise BatchNotFound(f"no batch {batch_id!r}; `emugen status` lists the latest batches")
    if batch.status in ("silver", "gold"):
        return Refined(
            batch_id,
            batch.valid_count or 0,
            batch.corrupted_count or 0,
            json.loads(batch.quarantined_by_reason or "{}"),
            already_done=True,
        )
    if batch.status != "bronze":
        raise StageOrderError(f"batch {batch_id} is {batch.status!r}; silver needs a bronze batch")
    return batch


def _start(session: Session, batch: BatchRow, stream: bool = False) -> _Pass:
    """A fresh pass; `stream`: load through a StreamLoad (PostgreSQL)."""
    spec = BatchSpec.model_validate_json(batch.spec)
    is_events = spec.stream is Stream.events
    target = SilverEvent if is_events else SilverCompany
    columns = EVENT_COLUMNS if is_events else COMPANY_COLUMNS
    load = (
        StreamLoad(session, target.__table__, columns, Quarantine.__table__, QUARANTINE_COLUMNS)
        if stream
        else None
    )
    return _Pass(
        batch.batch_id,
        spec,
        target,
        columns,
        is_events and session.get_bind().dialect.name == "sqlite",
        load=load,
        redelivered=redelivered_rows(session, batch.batch_id) if spec.arrival else frozenset(),
    )


def _context(session: Session, work: _Pass, items: list[tuple[int, str, Any]]) -> Context:
    """The contract's context for a chunk; for events, the companies silver holds."""
    if work.stream is not Stream.events:
        return Context(work.spec.interval_start, work.spec.interval_end, None)
    named = [
        company_of(item) if isinstance(item, tuple) else item.get("company_id")
        for _, _, item in items
        if isinstance(item, tuple | dict)
    ]
    wanted = list({c for c in named if isinstance(c, str)} - work.known.keys())
    if wanted and work.load is not None:
        work.load.flush()  # the lookup below needs the connection the COPY holds
    present = _existing(session, SilverCompany.company_id, wanted)
    work.known.update({cid: cid in present for cid in wanted})
    return Context(
        earliest_valid(work.spec), work.spec.interval_end, {c for c, ok in work.known.items() if ok}
    )


def _read(stream: Stream, part: Any) -> list[tuple[int, str, Any]]:
    """(row_no, payload, what was read): a clean event's regex groups, else the parsed JSON."""
    if stream is not Stream.events:
        return [(row_no, payload, parse(payload)) for row_no, payload in part]
    items = []
    for row_no, payload in part:
        groups = match_event(payload)
        items.append((row_no, payload, groups if groups is not None else parse(payload)))
    return items


def _refine_chunk(session: Session, work: _Pass, part: Any) -> None:
    """Check one chunk of bronze rows; write the valid ones to silver, the rest to quarantine."""
    items = _read(work.stream, part)
    ctx = _context(session, work, items)
    stream, batch_id, fast_text = work.stream, work.batch_id, work.fast_text
    to_row = _event_row if stream is Stream.events else _company_row
    valid: list[tuple[Any, ...]] = []
    rejected: list[tuple[Any, ...]] = []
    accept, drift = work.accepted.append, drift_field(work.spec)
    for row_no, payload, item in items:
        if row_no in work.redelivered:  # a copy of a row an earlier batch landed: dropped
            work.dropped += 1
            continue
        if drift is not None:
            item = without_drift(item, drift)
        if isinstance(item, tuple):
            row = event_row(item, ctx, fast_text, batch_id, row_no)
            if row is not None:
                accept(row_no)
                valid.append(row)
                continue
            item = parse(payload)  # the contract says exactly which rule it breaks
            item = item if drift is None else without_drift(item, drift)
        if isinstance(item, Rejection):
            rejection = item
        else:
            result = check(stream, item, ctx)
            if not isinstance(result, Rejection):
                accept(row_no)
                valid.append(
                    _event_row_sqlite(result, batch_id, row_no, item["event_timestamp"])
                    if fast_text
                    else to_row(result, batch_id, row_no)
                )
                continue
            rejection = result
        rejected.append(
            (
                batch_id,
                row_no,
                stream.value,
                rejection.reason.value,
                rejection.field,
                rejection.detail,
            )
        )
        work.reasons[rejection.reason.value] += 1
    # Rows go in row order and the key is unique, so the first occurrence lands and a
    # repeat (in this batch, from an earlier batch, or from a concurrent one) is skipped.
    if work.load is not None:
        work.load.add(valid, rejected)
        return
    # Events on SQLite: the rows already hold what the column types would bind (the stamp's
    # stored text, float coordinates), so bulk_insert skips a conversion pass per row
    bulk_insert(
        session, work.target.__table__, work.columns, valid, skip_existing=True, stored=fast_text
    )
    bulk_insert(session, Quarantine.__table__, QUARANTINE_COLUMNS, rejected, skip_existing=True)


def _record(
    session: Session, batch: BatchRow, work: _Pass, repeats: int, started: float
) -> Refined:
    """Mark the batch refined, with its counts, and log the stage."""
    excluded = None if work.stream is Stream.events else _excluded_ordinals(session, batch)
    valid_count = len(work.accepted) - repeats
    batch.status = "silver"
    batch.silver_at = datetime.now(UTC)
    batch.silver_ms = (time.perf_counter() - started) * 1000
    batch.valid_count = valid_count
    batch.corrupted_count = sum(work.reasons.values())
    batch.quarantined_by_reason = json.dumps(dict(sorted(work.reasons.items())))
    batch.excluded_ordinals = excluded
    batch.redelivered_count = work.dropped
    stage_done(
        batch.batch_id,
        "silver",
        batch.record_count,
        batch.silver_ms,
        valid=valid_count,
        quarantined=batch.corrupted_count,
    )
    return Refined(batch.batch_id, valid_count, batch.corrupted_count, dict(work.reasons))
