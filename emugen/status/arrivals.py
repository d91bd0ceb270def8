"""Time and delivery as the dashboard shows it: per stream the late, redelivered and delayed
counts and the contract version (`emugen status`'s arrivals line), and the gold windows that
late data revised after they had closed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from emugen.db.ledger import GoldWindowRevision
from emugen.pipeline.arrivals import arrival_summary
from emugen.vocabulary import Stream

CONDITIONS = ("late", "redelivered", "delayed")


def stream_arrivals(session: Session) -> dict[str, dict[str, int]]:
    """Per stream: ledger entries by condition (0 when none) and its contract version."""
    summary = arrival_summary(session)
    found = {}
    for stream in Stream:
        counts = summary.get(stream.value, {})
        found[stream.value] = {
            **{c: counts.get(c, 0) for c in CONDITIONS},
            "contract_version": counts.get("contract_version", 1),
        }
    return found


def revised_windows(session: Session) -> dict[str, Any]:
    """Gold windows revised after they closed (a row in gold_window_revisions each, shared by
    both streams' gold tables of one window length) and the most revisions of any."""
    count, most = session.execute(
        select(func.count(), func.max(GoldWindowRevision.revisions))
    ).one()
    return {"revised": int(count or 0), "max_revisions": int(most or 0)}


def window_revisions(session: Session, seconds: int, starts: list[int]) -> dict[int, int]:
    """Window start (ms) -> its revisions, for the windows of `seconds` among `starts`."""
    if not starts:
        return {}
    return dict(
        session.execute(
            select(GoldWindowRevision.window_start_ms, GoldWindowRevision.revisions).where(
                GoldWindowRevision.window_seconds == seconds,
                GoldWindowRevision.window_start_ms.in_(starts),
            )
        ).all()
    )
