"""Crash recovery: find batches stuck before a stage, and mark those that cannot proceed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from emugen.db.models import BatchRow

NEXT_STAGE = {"bronze": "silver", "silver": "gold"}


def claim_stuck(
    session: Session, stuck_after: timedelta, now: datetime | None = None
) -> list[tuple[str, str]]:
    """(batch id, next stage) for each batch idle past `stuck_after`, stamped as re-dispatched.

    A batch is idle when neither its last stage nor its last re-dispatch is recent, so one
    that is merely queued behind a backlog is re-sent at most once per timeout.
    """
    now = now or datetime.now(UTC)
    cutoff = now - stuck_after
    rows = session.scalars(
        select(BatchRow)
        .where(
            or_(
                (BatchRow.status == "bronze") & (BatchRow.bronze_at < cutoff),
                (BatchRow.status == "silver") & (BatchRow.silver_at < cutoff),
            ),
            or_(BatchRow.redispatched_at.is_(None), BatchRow.redispatched_at < cutoff),
        )
        .order_by(BatchRow.batch_id)
        .with_for_update(skip_locked=True)
    ).all()
    claimed = []
    for row in rows:
        row.redispatched_at = now
        claimed.append((row.batch_id, NEXT_STAGE[row.status]))
    return claimed


def mark_failed(session: Session, batch_id: str, stage: str, error: str) -> bool:
    """Record that `stage` gave up on the batch; False when the batch no longer exists."""
    row = session.get(BatchRow, batch_id)
    if row is None:
        return False
    if row.status != "gold":
        row.status = "failed"
        row.error = f"{stage}: {error}"[:2000]
    return True
