"""Gold: recompute, from silver, every aggregate window a batch touches (never blind increments)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, case, delete, distinct, func, select
from sqlalchemy.orm import Session

from emugen.db.bulk import bulk_insert
from emugen.db.models import (
    BatchRow,
    GoldCompanyWindow,
    GoldRegionWindow,
    SilverCompany,
    SilverEvent,
)
from emugen.db.session import lock_gold
from emugen.generate.seeding import EPOCH, MS
from emugen.pipeline.bronze import BatchNotFound
from emugen.pipeline.log import stage_done
from emugen.pipeline.silver import StageOrderError
from emugen.settings import EventType, Mode, Stream

# A window short enough to watch fill up in emulated mode, an hour at production volume.
WINDOW_SECONDS = {Mode.emulated: 60, Mode.production: 3600}


@dataclass(frozen=True)
class Built:
    batch_id: str
    windows: list[int]  # window starts (epoch ms) recomputed
    already_done: bool = False


def _count_type(kind: EventType):  # noqa: ANN202 - a SQL expression
    return func.sum(case((SilverEvent.event_type == kind.value, 1), else_=0))


def company_windows(session: Session, seconds: int, start_ms: int) -> list[tuple]:
    """Per company: events by type and distinct drivers in [start, start + seconds)."""
    end_ms = start_ms + seconds * 1000
    rows = session.execute(
        select(SilverEvent.company_id, func.count(), _count_type(EventType.start_driving),
               _count_type(EventType.stopped_driving), _count_type(EventType.delivered),
               func.count(distinct(SilverEvent.driver_id)))
        .where(SilverEvent.event_ms >= start_ms, SilverEvent.event_ms < end_ms)
        .group_by(SilverEvent.company_id)
    ).all()
    start = EPOCH + MS * start_ms
    return [(seconds, cid, start_ms, start, n, s, st, d, drivers)
            for cid, n, s, st, d, drivers in rows]


def region_windows(session: Session, seconds: int, start_ms: int) -> list[tuple]:
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


def _touched(session: Session, stream: Stream, batch_id: str, seconds: int) -> list[int]:
    width = seconds * 1000
    column = SilverEvent.event_ms if stream is Stream.events else SilverCompany.onboarded_ms
    table = SilverEvent if stream is Stream.events else SilverCompany
    # floor division (SQLAlchemy 2 renders it per dialect); epoch ms are positive anyway
    found = session.scalars(
        select(column // width).where(table.batch_id == batch_id).distinct()
    ).all()
    return sorted(int(w) * width for w in found)


def recompute_window(session: Session, seconds: int, start_ms: int, stream: Stream) -> None:
    """Replace the gold rows of one window with a fresh aggregate of silver."""
    if stream is Stream.events:
        session.execute(delete(GoldCompanyWindow).where(and_(
            GoldCompanyWindow.window_seconds == seconds,
            GoldCompanyWindow.window_start_ms == start_ms)))
        bulk_insert(session, GoldCompanyWindow.__table__,
                    ("window_seconds", "company_id", "window_start_ms", "window_start", "events",
                     "start_driving", "stopped_driving", "delivered", "active_drivers"),
                    company_windows(session, seconds, start_ms))
    session.execute(delete(GoldRegionWindow).where(and_(
        GoldRegionWindow.window_seconds == seconds,
        GoldRegionWindow.window_start_ms == start_ms)))
    bulk_insert(session, GoldRegionWindow.__table__,
                ("window_seconds", "region", "window_start_ms", "window_start",
                 "companies_onboarded", "events", "deliveries"),
                region_windows(session, seconds, start_ms))


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
    windows = _touched(session, stream, batch_id, seconds)
    for start_ms in windows:
        recompute_window(session, seconds, start_ms, stream)
    batch.status = "gold"
    batch.gold_at = datetime.now(UTC)
    batch.gold_ms = (time.perf_counter() - started) * 1000
    stage_done(batch_id, "gold", batch.valid_count or 0, batch.gold_ms, windows=len(windows))
    return Built(batch_id, windows)
