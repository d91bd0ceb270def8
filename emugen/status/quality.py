"""The quality panel: defect shares per type per stream, and the reconciliation verdict."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from emugen.db.models import BatchRow, InjectedDefect
from emugen.pipeline.reconcile import reconcile


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def injected_by_stream(session: Session) -> dict[str, dict[str, Any]]:
    """Records and injected defects per stream (the truth table, aggregated in SQL)."""
    streams: dict[str, dict[str, Any]] = {
        stream: {"records": int(records or 0), "injected": 0, "by_type": {}}
        for stream, records in session.execute(
            select(BatchRow.stream, func.sum(BatchRow.record_count)).group_by(BatchRow.stream)
        )
    }
    rows = session.execute(
        select(BatchRow.stream, InjectedDefect.defect, func.count())
        .join(BatchRow, BatchRow.batch_id == InjectedDefect.batch_id)
        .group_by(BatchRow.stream, InjectedDefect.defect)
    )
    for stream, defect, n in rows:
        entry = streams.setdefault(stream, {"records": 0, "injected": 0, "by_type": {}})
        entry["injected"] += n
        entry["by_type"][defect] = n
    for entry in streams.values():
        entry["defect_pct"] = _pct(entry["injected"], entry["records"])
        entry["by_type"] = {
            d: {"count": n, "pct": _pct(n, entry["records"])}
            for d, n in sorted(entry["by_type"].items())
        }
    return dict(sorted(streams.items()))


def quality(session: Session) -> dict[str, Any]:
    """Injected vs caught per defect type, escapes into silver and false alarms.

    `escaped` counts defects that reached silver (an alarm); `wrong_reason` ones were
    quarantined for another reason than the injected one; `pending` ones wait for silver.
    """
    r = reconcile(session)
    by_defect = {}
    for defect, t in sorted(r.by_defect.items()):
        settled = t.injected - t.pending
        by_defect[defect] = {
            **vars(t),
            "caught_pct": round(100.0 * t.caught / settled, 2) if settled else None,
        }
    escaped = r.missed
    wrong = sum(t.wrong_reason for t in r.by_defect.values())
    false_alarms = sum(r.false_alarms.values())
    alarms = []
    if escaped:
        alarms.append(
            f"{escaped} injected defect{'s' if escaped != 1 else ''} escaped into "
            "silver: "
            + ", ".join(f"{d} {t['missed']}" for d, t in by_defect.items() if t["missed"])
        )
    if wrong:
        alarms.append(f"{wrong} defects quarantined with the wrong reason")
    if false_alarms:
        alarms.append(
            f"{false_alarms} clean records quarantined (false alarms): "
            + ", ".join(f"{k} {v}" for k, v in sorted(r.false_alarms.items()))
        )
    return {
        "streams": injected_by_stream(session),
        "by_defect": by_defect,
        "injected": r.injected,
        "caught": r.caught,
        "escaped": escaped,
        "wrong_reason": wrong,
        "pending": sum(t.pending for t in r.by_defect.values()),
        "caught_pct": round(r.caught_pct, 2),
        "false_alarms": dict(sorted(r.false_alarms.items())),
        "false_alarm_total": false_alarms,
        "ok": r.ok,
        "alarms": alarms,
    }
