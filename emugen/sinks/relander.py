"""Landing again: batches a crash or an outage left without their file, and batches whose file
or manifest was deleted, truncated or changed later. The reaper and `emugen land repair` call
these; each writes the same bytes as the first landing, from bronze.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from emugen.db.models import BatchRow, LandedFile, LandingFailure
from emugen.db.session import read_session
from emugen.settings import Landing
from emugen.sinks.audit import AUDIT_BATCHES, AUDIT_BYTES, audit
from emugen.sinks.lander import land
from emugen.sinks.release import not_held

RELAND_LIMIT = 200  # batches per reaper run


def unlanded(
    session: Session, older_than: timedelta, now: datetime | None = None, limit: int = RELAND_LIMIT
) -> list[str]:
    """Batches in bronze (any status: bronze keeps a failed batch's rows) without a file,
    those that failed least often first, so one batch that cannot land blocks no other."""
    cutoff = (now or datetime.now(UTC)) - older_than
    landed = select(LandedFile.batch_id).where(LandedFile.batch_id == BatchRow.batch_id)
    return list(
        session.scalars(
            select(BatchRow.batch_id)
            .outerjoin(LandingFailure, LandingFailure.batch_id == BatchRow.batch_id)
            .where(~landed.exists(), BatchRow.bronze_at < cutoff, not_held(BatchRow.batch_id))
            .order_by(func.coalesce(LandingFailure.attempts, 0), BatchRow.batch_id)
            .limit(limit)
        )
    )


def reland_missing(
    engine: Engine, landing: Landing, older_than: timedelta, budget_s: float = 10.0
) -> list[str]:
    """Land every batch a crash or an outage left without its file; the ids landed."""
    if not landing.enabled:
        return []
    with read_session(engine) as session:
        missing = unlanded(session, older_than)
    deadline, done = time.monotonic() + budget_s, []
    for batch_id in missing:
        if time.monotonic() > deadline:
            break
        if land(engine, landing, batch_id, retry_now=True) is None:
            break  # the cause is still there: one error per run, not one per batch
        done.append(batch_id)
    return done


def reland(engine: Engine, landing: Landing, batch_ids: Sequence[str]) -> Relanded:
    """Land these batches again from bronze (the reaper's and `land repair`'s way): the same
    bytes and the same manifest, since both are functions of bronze and the batch. A batch whose
    bronze no longer gives the bytes first recorded is listed apart (`changed`), for the caller
    to report."""
    result = Relanded()
    with read_session(engine) as session:
        before = dict(
            session.execute(
                select(LandedFile.batch_id, LandedFile.sha256).where(
                    LandedFile.batch_id.in_(batch_ids)
                )
            ).all()
        )
    for batch_id in batch_ids:
        record = land(engine, landing, batch_id, retry_now=True)
        if record is None:
            result.failed.append(batch_id)
        elif batch_id in before and before[batch_id] != record.sha256:
            result.changed.append(batch_id)
        else:
            result.landed.append(batch_id)
    return result


@dataclass
class Relanded:
    """What re-landing did: landed as before, landed with other bytes, or not landed."""

    landed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class _AuditCursor:
    """Where the reaper's audit goes on next time (per process: any worker may resume it)."""

    after: str | None = None


def reland_damaged(engine: Engine, landing: Landing) -> list[str]:
    """Audit the next slice of landed batches and land again those whose file or manifest is
    missing, damaged or changed; the ids landed. Each run reads a bounded slice, so the whole
    zone is covered over successive reaper runs at a fixed cost per run."""
    if not landing.enabled:
        return []
    found, _AuditCursor.after = audit(
        engine, landing, after=_AuditCursor.after, limit=AUDIT_BATCHES, byte_budget=AUDIT_BYTES
    )
    # a batch not landed yet may be landing right now: reland_missing waits stuck_after for it
    landed = {p.batch_id for p in found.problems if p.what != "not landed"}
    damaged = [b for b in found.damaged if b in landed]
    if not damaged:
        return []
    return reland(engine, landing, damaged).landed
