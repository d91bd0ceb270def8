"""Fleet control state in the database: pause/resume, config reloads, skipped ticks, clean."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.orm import Session

from emugen.db.ledger import ArrivalEntry, GoldWindowRevision
from emugen.db.models import (
    BatchRow,
    BronzeRecord,
    ConfigReload,
    ControlState,
    GoldCompanyWindow,
    GoldRegionWindow,
    GoldWindowDriver,
    InjectedDefect,
    LandedFile,
    LandingFailure,
    PlannedCompany,
    Quarantine,
    SilverCompany,
    SilverEvent,
    SkippedTick,
)
from emugen.errors import NotPaused
from emugen.settings import Landing

PAUSED = "paused"


def is_paused(session: Session) -> bool:
    value = session.scalar(select(ControlState.value).where(ControlState.key == PAUSED))
    return value == "true"


def set_paused(session: Session, paused: bool) -> bool:
    """Set the flag; returns whether it changed (pausing twice is not an error)."""
    row = session.get(ControlState, PAUSED)
    before = row is not None and row.value == "true"
    now = datetime.now(UTC)
    if row is None:
        session.add(ControlState(key=PAUSED, value=json.dumps(paused), updated_at=now))
    elif before != paused:
        row.value, row.updated_at = json.dumps(paused), now
    return before != paused


def paused_since(session: Session) -> datetime | None:
    row = session.get(ControlState, PAUSED)
    return row.updated_at if row is not None and row.value == "true" else None


def record_reload(
    session: Session,
    source: str,
    *,
    fingerprint: str | None = None,
    mode: str | None = None,
    problems: Sequence[str] = (),
) -> None:
    session.add(
        ConfigReload(
            at=datetime.now(UTC),
            source=source,
            accepted=not problems,
            fingerprint=fingerprint,
            mode=mode,
            problems=json.dumps(list(problems)) if problems else None,
        )
    )


def last_reload(session: Session, accepted: bool | None = None) -> ConfigReload | None:
    query = select(ConfigReload).order_by(ConfigReload.id.desc()).limit(1)
    if accepted is not None:
        query = query.where(ConfigReload.accepted == accepted)
    return session.scalar(query)


def record_skip(
    session: Session, stream: str, scheduled_at: datetime, reason: str, detail: str
) -> None:
    session.add(
        SkippedTick(
            at=datetime.now(UTC),
            stream=stream,
            scheduled_at=scheduled_at,
            reason=reason,
            detail=detail,
        )
    )


def skip_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(SkippedTick.reason, func.count()).group_by(SkippedTick.reason))
    return {reason: count for reason, count in rows}


@dataclass(frozen=True)
class Cleaned:
    removed: dict[str, int]

    def __str__(self) -> str:
        return "removed " + ", ".join(f"{n:,} {table}" for table, n in self.removed.items())


# children before parents, so nothing is ever left pointing at a deleted batch
_WIPED = (
    GoldCompanyWindow,
    GoldRegionWindow,
    GoldWindowDriver,
    GoldWindowRevision,
    Quarantine,
    SilverEvent,
    SilverCompany,
    InjectedDefect,
    ArrivalEntry,
    PlannedCompany,
    BronzeRecord,
    BatchRow,
    SkippedTick,
)


def require_paused(session: Session) -> None:
    if not is_paused(session):
        raise NotPaused("clean only runs while the fleet is paused: run `emugen pause` first")


def _deleted(session: Session, table: type[Any]) -> int:
    """Rows a table-wide DELETE removed (its result is a CursorResult, typed as Result)."""
    return cast(CursorResult[Any], session.execute(delete(table))).rowcount or 0


def clean(session: Session, landing: Landing | None = None) -> Cleaned:
    """Wipe every layer, the truth and the skip counters; only while paused.

    With `landing`, the landing zone's files go too: seqs restart at 1 after a clean, and a
    consumer must not find two different batches under one batch id.
    """
    require_paused(session)
    removed, files = {}, {}
    if landing is not None:  # files first: if the zone refuses, nothing is wiped
        from emugen.sinks.lander import remove_files

        ids = list(session.scalars(select(LandedFile.batch_id)))
        files["landing files"] = remove_files(landing, session, ids)
    for table in (LandedFile, LandingFailure):
        files[table.__tablename__] = _deleted(session, table)
    for wiped in _WIPED:
        removed[wiped.__tablename__] = _deleted(session, wiped)
    removed.update(files)
    # the company marks (retention's floor, the watermark checkpoint) and retention's tally
    # describe batches that no longer exist: start again from ordinal 0 and seq 1
    session.execute(
        delete(ControlState).where(
            ControlState.key.in_(("company_floor", "company_settled", "retention_tally"))
        )
    )
    # retention's pruned-seq marks too: seqs restart, so an old mark would call new ids pruned
    session.execute(delete(ControlState).where(ControlState.key.startswith("pruned_through:")))
    return Cleaned(removed)
