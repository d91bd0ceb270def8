"""The gold rows a batch changed: each window and company (or region), now and without it.

Gold is recomputed, not incremented, so no "before" is stored. What is cheap and exact is the
batch's own share of each row (its silver rows in that window), so the page shows gold now,
the batch's share, and now minus the share: the row as it would read without this batch.
Distinct counts (active drivers) cannot be split that way and are shown as they are now.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from emugen.db.models import (
    BatchRow,
    GoldCompanyWindow,
    GoldRegionWindow,
    SilverCompany,
    SilverEvent,
)
from emugen.status.arrivals import window_revisions
from emugen.vocabulary import EPOCH, MS, WINDOW_SECONDS, EventType, Mode

MAX_ROWS = 1000


def _events(batch: BatchRow, width: int) -> tuple[Any, Any, list[str]]:
    """(the batch's share per company window, the join to gold, the figures compared)."""
    window = (SilverEvent.event_ms // width * width).label("start_ms")
    delivered = func.sum(case((SilverEvent.event_type == EventType.delivered.value, 1), else_=0))
    mine = (
        select(
            SilverEvent.company_id.label("key"),
            window,
            func.count().label("events"),
            delivered.label("delivered"),
        )
        .where(SilverEvent.batch_id == batch.batch_id)
        .group_by(SilverEvent.company_id, window)
        .subquery()
    )
    gold = GoldCompanyWindow
    query = select(
        mine,
        gold.events.label("now_events"),
        gold.delivered.label("now_delivered"),
        gold.active_drivers.label("now_active_drivers"),
    ).outerjoin(
        gold,
        and_(
            gold.window_seconds == width // 1000,
            gold.company_id == mine.c.key,
            gold.window_start_ms == mine.c.start_ms,
        ),
    )
    return mine, query, ["events", "delivered"]


def _companies(batch: BatchRow, width: int) -> tuple[Any, Any, list[str]]:
    window = (SilverCompany.onboarded_ms // width * width).label("start_ms")
    mine = (
        select(SilverCompany.region.label("key"), window, func.count().label("companies_onboarded"))
        .where(SilverCompany.batch_id == batch.batch_id)
        .group_by(SilverCompany.region, window)
        .subquery()
    )
    gold = GoldRegionWindow
    query = select(mine, gold.companies_onboarded.label("now_companies_onboarded")).outerjoin(
        gold,
        and_(
            gold.window_seconds == width // 1000,
            gold.region == mine.c.key,
            gold.window_start_ms == mine.c.start_ms,
        ),
    )
    return mine, query, ["companies_onboarded"]


def gold_changes(session: Session, batch: BatchRow, limit: int = 200) -> dict[str, Any]:
    """The gold rows the batch's silver rows fall in, first `limit` by window then key."""
    seconds = WINDOW_SECONDS[Mode(batch.mode)]
    is_events = batch.stream == "events"
    mine, query, figures = (_events if is_events else _companies)(batch, seconds * 1000)
    # the count rides along as a window function: a second query would group the batch twice
    rows = (
        session.execute(
            query.add_columns(func.count().over().label("total"))
            .order_by(mine.c.start_ms, mine.c.key)
            .limit(limit)
        )
        .mappings()
        .all()
    )
    total = rows[0]["total"] if rows else 0
    # how often late data revised each window after it closed (0: never)
    revised = window_revisions(session, seconds, sorted({int(r["start_ms"]) for r in rows}))
    items = []
    for row in rows:
        item: dict[str, Any] = {
            "window_start": (EPOCH + MS * int(row["start_ms"])).isoformat(),
            "window_start_ms": int(row["start_ms"]),
            "revisions": revised.get(int(row["start_ms"]), 0),
            "company_id" if is_events else "region": row["key"],
        }
        for name in figures:
            now = row[f"now_{name}"]
            item[name] = {
                "now": now,
                "this_batch": int(row[name]),
                "without_batch": None if now is None else now - int(row[name]),
            }
        if is_events:
            item["active_drivers"] = {"now": row["now_active_drivers"]}
        items.append(item)
    return {
        "batch_id": batch.batch_id,
        "table": "gold_company_window" if is_events else "gold_region_window",
        "window_seconds": seconds,
        "total": total,
        "limit": limit,
        "items": items,
        "pending": batch.status != "gold",
    }
