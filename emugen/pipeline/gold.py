"""Gold: recompute, from silver, every aggregate window a batch touches (never blind increments)."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, delete, distinct, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from emugen.db.bulk import bulk_insert
from emugen.db.models import (
    BatchRow,
    GoldCompanyWindow,
    GoldRegionWindow,
    SilverCompany,
    SilverEvent,
)
from emugen.db.session import lock_gold
from emugen.errors import BatchNotFound, StageOrderError
from emugen.pipeline.log import stage_done
from emugen.pipeline.stage import StageResult, since_ms
from emugen.vocabulary import EPOCH, MS, EventType, Mode, Stream

# A window short enough to watch fill up in emulated mode, an hour at production volume.
WINDOW_SECONDS = {Mode.emulated: 60, Mode.production: 3600}


@dataclass(frozen=True)
class Built:
    batch_id: str
    windows: list[int]  # window starts (epoch ms) recomputed
    already_done: bool = False


def _count_type(kind: EventType) -> ColumnElement[Any]:
    return func.sum(case((SilverEvent.event_type == kind.value, 1), else_=0))


# A batch with more valid events than this rebuilds whole windows: a long IN list costs more
# than the rows it saves, and production batches touch most companies anyway.
MAX_COMPANY_SUBSET = 500


def company_windows(session: Session, seconds: int, start_ms: int,
                    companies: Collection[str] | None = None) -> list[tuple[Any, ...]]:
    """Per company (all, or only `companies`): events by type and distinct drivers in the window."""
    end_ms = start_ms + seconds * 1000
    query = (
        select(SilverEvent.company_id, func.count(), _count_type(EventType.start_driving),
               _count_type(EventType.stopped_driving), _count_type(EventType.delivered),
               func.count(distinct(SilverEvent.driver_id)))
        .where(SilverEvent.event_ms >= start_ms, SilverEvent.event_ms < end_ms)
        .group_by(SilverEvent.company_id)
    )
    if companies is not None:
        query = query.where(SilverEvent.company_id.in_(sorted(companies)))
    rows = session.execute(query).all()
    start = EPOCH + MS * start_ms
    return [(seconds, cid, start_ms, start, n, s, st, d, drivers)
            for cid, n, s, st, d, drivers in rows]


def region_windows(session: Session, seconds: int, start_ms: int) -> list[tuple[Any, ...]]:
    """Per region: companies onboarded, events and deliveries in [start, start + seconds)."""
    end_ms = start_ms + seconds * 1000
    onboarded = dict(session.execute(
        select(SilverCompany.region, func.count())
        .where(SilverCompany.onboarded_ms >= start_ms, SilverCompany.onboarded_ms < end_ms)
        .group_by(SilverCompany.region)
    ).all())
    moved = {
        region: (n, d) for region, n, d in session.execute(
            select(SilverCompany.region, func.count(), _count_type(EventType.delivered))
            .join(SilverCompany, SilverCompany.company_id == SilverEvent.company_id)
            .where(SilverEvent.event_ms >= start_ms, SilverEvent.event_ms < end_ms)
            .group_by(SilverCompany.region)
        ).all()
    }
    start = EPOCH + MS * start_ms
    return [(seconds, region, start_ms, start, onboarded.get(region, 0), *moved.get(region, (0, 0)))
            for region in sorted(onboarded.keys() | moved.keys())]


def _touched(session: Session, stream: Stream, batch_id: str, seconds: int,
             rows: int) -> dict[int, set[str] | None]:
    """Window start -> the companies whose rows the batch can change (None: the whole window)."""
    width = seconds * 1000
    if stream is Stream.companies or rows > MAX_COMPANY_SUBSET:
        # A big batch rebuilds whole windows without listing its (window, company) pairs first.
        # Floor division: SQLAlchemy 2 renders it per dialect; epoch ms are positive anyway.
        table = SilverEvent if stream is Stream.events else SilverCompany
        column = SilverEvent.event_ms if stream is Stream.events else SilverCompany.onboarded_ms
        found = session.scalars(select(column // width)
                                .where(table.batch_id == batch_id).distinct()).all()
        return {int(w) * width: None for w in sorted(found)}
    companies: dict[int, set[str]] = {}
    for window, company in session.execute(
            select(SilverEvent.event_ms // width, SilverEvent.company_id)
            .where(SilverEvent.batch_id == batch_id).distinct()):
        companies.setdefault(int(window) * width, set()).add(company)
    return {start: ids for start, ids in sorted(companies.items())}


def recompute_window(session: Session, seconds: int, start_ms: int, stream: Stream,
                     companies: Collection[str] | None = None) -> None:
    """Replace the gold rows of one window (or of some companies in it) with silver's aggregate.

    A batch of events only changes the rows of the companies it mentions, so rebuilding just those
    keeps gold's cost per batch flat while the window holds ever more companies; the region rows
    are few and always rebuilt whole.
    """
    if stream is Stream.events:
        stale = and_(GoldCompanyWindow.window_seconds == seconds,
                     GoldCompanyWindow.window_start_ms == start_ms)
        if companies is not None:
            stale = and_(stale, GoldCompanyWindow.company_id.in_(sorted(companies)))
        session.execute(delete(GoldCompanyWindow).where(stale))
        bulk_insert(session, GoldCompanyWindow.__table__,
                    ("window_seconds", "company_id", "window_start_ms", "window_start", "events",
                     "start_driving", "stopped_driving", "delivered", "active_drivers"),
                    company_windows(session, seconds, start_ms, companies))
    session.execute(delete(GoldRegionWindow).where(and_(
        GoldRegionWindow.window_seconds == seconds,
        GoldRegionWindow.window_start_ms == start_ms)))
    bulk_insert(session, GoldRegionWindow.__table__,
                ("window_seconds", "region", "window_start_ms", "window_start",
                 "companies_onboarded", "events", "deliveries"),
                region_windows(session, seconds, start_ms))


def run(session: Session, batch_id: str) -> StageResult:
    """The stage contract: the batch's silver rows in, the gold windows recomputed out."""
    started = time.perf_counter()
    built = build_gold(session, batch_id)
    batch = session.get(BatchRow, batch_id)
    rows_in = (batch.valid_count or 0) if batch is not None else 0
    return StageResult(batch_id, "gold", rows_in, len(built.windows), since_ms(started),
                       "already in gold" if built.already_done else "windows recomputed")


def build_gold(session: Session, batch_id: str) -> Built:
    """Recompute the gold windows of a refined batch (idempotent; serialised by a lock)."""
    started = time.perf_counter()
    lock_gold(session)
    batch = session.execute(
        select(BatchRow).where(BatchRow.batch_id == batch_id).with_for_update()
    ).scalar_one_or_none()
    if batch is None:
        raise BatchNotFound(f"no batch {batch_id!r}; `emugen status` lists the latest batches")
    if batch.status == "gold":
        return Built(batch_id, [], already_done=True)
    if batch.status != "silver":
        raise StageOrderError(f"batch {batch_id} is {batch.status!r}; gold needs a silver batch")
    stream, seconds = Stream(batch.stream), WINDOW_SECONDS[Mode(batch.mode)]
    touched = _touched(session, stream, batch_id, seconds, batch.valid_count or 0)
    windows = list(touched)
    for start_ms, companies in touched.items():
        recompute_window(session, seconds, start_ms, stream, companies)
    batch.status = "gold"
    batch.gold_at = datetime.now(UTC)
    batch.gold_ms = (time.perf_counter() - started) * 1000
    stage_done(batch_id, "gold", batch.valid_count or 0, batch.gold_ms, windows=len(windows))
    return Built(batch_id, windows)
