"""`emugen status`'s report, and the reads it shares with the dashboard's (`health`).

Batches per stream and status, the fleet's control state (pause, skips, reloads) and stage
latencies are each computed here once; `health.health` builds the dashboard's view from these
same functions, and both take the store's unseen state from `store`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from emugen.db.models import (
    BatchRow,
    BronzeRecord,
    ConfigReload,
    GoldCompanyWindow,
    GoldRegionWindow,
    Quarantine,
    SilverCompany,
    SilverEvent,
)
from emugen.fleet.due import view as due_view
from emugen.pipeline.arrivals import arrival_summary
from emugen.pipeline.reconcile import reconcile
from emugen.sinks.lander import landing_health


def _ms(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return round((later - earlier).total_seconds() * 1000, 1)


def layer_latencies(b: Any) -> dict[str, float | None]:
    """Each layer's latency (ms) from the previous stage's commit to its own, queueing
    included; `bronze` starts at the tick."""
    return {
        "bronze": _ms(b.bronze_at, b.scheduled_at),
        "silver": _ms(b.silver_at, b.bronze_at),
        "gold": _ms(b.gold_at, b.silver_at),
        "end_to_end": _ms(b.gold_at, b.scheduled_at),
    }


def batch_tally(session: Session) -> list[tuple[str, str, int, int]]:
    """(stream, status, batches, records) rows, read from one covering index."""
    return [
        (stream, state, n, int(records or 0))
        for stream, state, n, records in session.execute(
            select(
                BatchRow.stream, BatchRow.status, func.count(), func.sum(BatchRow.record_count)
            ).group_by(BatchRow.stream, BatchRow.status)
        )
    ]


def reload_view(row: ConfigReload | None) -> dict[str, Any] | None:
    """A config reload as both reports show it."""
    if row is None:
        return None
    return {
        "at": row.at.isoformat(),
        "accepted": row.accepted,
        "mode": row.mode,
        "fingerprint": row.fingerprint,
        "source": row.source,
        "problems": json.loads(row.problems) if row.problems else [],
    }


def control(session: Session) -> dict[str, Any]:
    """The fleet's control state: pause, skipped ticks by reason, the last reload and rejection."""
    from emugen.fleet.control import is_paused, last_reload, paused_since, skip_counts

    since = paused_since(session)
    skips = skip_counts(session)
    return {
        "paused": is_paused(session),
        "paused_since": since.isoformat() if since else None,
        "skips": dict(sorted(skips.items())),
        "skips_total": sum(skips.values()),
        "last_reload": reload_view(last_reload(session)),
        "last_rejection": reload_view(last_reload(session, accepted=False)),
    }


def _count(session: Session, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def status(
    session: Session,
    latest: int = 10,
    store: dict[str, Any] | None = None,
    due: tuple[dict[str, Any] | None, str | None] = (None, None),
    beat: tuple[bool | None, str] | None = None,
) -> dict[str, Any]:
    """The report; `store` (from status.store.store_state), `due` (beat's plan and why it is
    missing, from emugen.fleet.due.read_quietly) and `beat` (whether a beat holds its lease,
    from emugen.fleet.beat_lease.read_lease) say what reading the store cannot."""
    by_status: dict[str, dict[str, int]] = {}
    for stream, state, n, _records in batch_tally(session):
        by_status.setdefault(stream, {})[state] = n
    recent = session.scalars(
        select(BatchRow)
        .order_by(BatchRow.generated_at.desc(), BatchRow.batch_id.desc())
        .limit(latest)
    ).all()
    fleet = _fleet(session)
    running, note = beat if beat is not None else (None, "the broker was not asked")
    fleet.update(running=running, beat=note)
    return {
        "fleet": fleet,
        "store": store,
        "due": due_view(due[0], datetime.now(UTC), fleet["paused"], due[1]),
        "batches": by_status,
        "layers": {
            "bronze_records": _count(session, BronzeRecord),
            "silver_companies": _count(session, SilverCompany),
            "silver_events": _count(session, SilverEvent),
            "quarantine": _count(session, Quarantine),
            "gold_company_windows": _count(session, GoldCompanyWindow),
            "gold_region_windows": _count(session, GoldRegionWindow),
        },
        "quarantine_by_reason": dict(
            session.execute(
                select(Quarantine.reason, func.count())
                .group_by(Quarantine.reason)
                .order_by(Quarantine.reason)
            ).all()
        ),
        "reconciliation": reconcile(session).as_dict(),
        "arrivals": arrival_summary(session),
        "landing": landing_health(session),
        "latest": [
            {
                "batch_id": b.batch_id,
                "mode": b.mode,
                "status": b.status,
                "records": b.record_count,
                "valid": b.valid_count,
                "quarantined": b.corrupted_count,
                "injected": b.injected_count,
                "scheduled_at": b.scheduled_at.isoformat(),
                "generate_ms": round(b.generate_ms, 1),
                **_stage_ms(layer_latencies(b)),
                "note": b.note,
            }
            for b in recent
        ],
    }


def _stage_ms(latency: dict[str, float | None]) -> dict[str, float | None]:
    return {
        "bronze_ms": latency["bronze"],
        "silver_ms": latency["silver"],
        "gold_ms": latency["gold"],
        "tick_to_gold_ms": latency["end_to_end"],
    }


def _fleet(session: Session) -> dict[str, Any]:
    ctl = control(session)
    reload = ctl["last_reload"]
    return {
        "paused": ctl["paused"],
        "skipped_ticks": ctl["skips"],
        # the CLI's report predates the reload's source: its shape stays as documented
        "last_reload": None
        if reload is None
        else {k: v for k, v in reload.items() if k != "source"},
    }


def format_status(s: dict[str, Any]) -> str:
    fleet = s["fleet"]
    reload = fleet["last_reload"]
    skips = "  ".join(f"{k} {v}" for k, v in sorted(fleet["skipped_ticks"].items())) or "none"
    store = s.get("store") or {}
    problems = store.get("problems") or []
    state = _fleet_state(fleet)
    if problems:  # what a reader of the store alone would miss comes first
        state = f"DEGRADED ({state})"
    lines = [f"fleet: {state}  skipped ticks: {skips}"]
    lines.extend(f"store: {problem}" for problem in problems)
    if reload is not None:
        verdict = (
            f"applied (mode {reload['mode']}, fingerprint {reload['fingerprint']})"
            if reload["accepted"]
            else "REJECTED: " + "; ".join(reload["problems"])
        )
        lines.append(f"last config reload {reload['at']}: {verdict}")
    lines.extend(_due_lines(s.get("due")))
    lines.append("batches:")
    for stream, states in sorted(s["batches"].items()):
        lines.append(f"  {stream:9} " + "  ".join(f"{k} {v}" for k, v in sorted(states.items())))
    if not s["batches"]:
        lines.append("  none yet")
    lines.append("layers:  " + "  ".join(f"{k} {v}" for k, v in s["layers"].items()))
    q = s["quarantine_by_reason"]
    lines.append("quarantine: " + ("  ".join(f"{k} {v}" for k, v in q.items()) or "empty"))
    r = s["reconciliation"]
    verdict = "OK" if r["ok"] else "ALARM"
    lines.append(
        f"reconciliation: {verdict}  injected {r['injected']}  caught {r['caught']} "
        f"({r['caught_pct']:.1f} %)  missed {r['missed']}  false alarms "
        f"{sum(r['false_alarms'].values())}"
    )
    lines.extend(
        f"arrivals: {stream} " + "  ".join(f"{k} {v}" for k, v in sorted(c.items()))
        for stream, c in sorted(s.get("arrivals", {}).items())
    )
    if r.get("unbalanced"):
        lines.append(
            f"conservation: {len(r['unbalanced'])} batches do not add up: "
            + "; ".join(f"{b}: {why}" for b, why in sorted(r["unbalanced"].items())[:3])
        )
    lines.append(_landing_line(s["landing"]))
    lines.append(
        "latest:  batch                  status records valid quar  "
        "gen_ms  →bronze  →silver   →gold  tick→gold"
    )
    for b in s["latest"]:

        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:.0f}"

        lines.append(
            f"  {b['batch_id']:22} {b['status']:6} {b['records']:7} "
            f"{b['valid'] if b['valid'] is not None else '-':>5} "
            f"{b['quarantined'] if b['quarantined'] is not None else '-':>4} "
            f"{f(b['generate_ms']):>7} {f(b['bronze_ms']):>8} {f(b['silver_ms']):>8} "
            f"{f(b['gold_ms']):>7} {f(b['tick_to_gold_ms']):>10}"
        )
    return "\n".join(lines)


def _fleet_state(fleet: dict[str, Any]) -> str:
    """`running (beat ...)`, `PAUSED (...)`, `no fleet running (...)` or `unknown (...)`: from
    beat's lease on the broker, not from the store (a store outlives the fleet that filled it)."""
    running, note = fleet.get("running"), fleet.get("beat") or "the broker was not asked"
    paused = ", paused" if fleet["paused"] else ""
    if running is None:
        return f"unknown ({note}{paused})"
    if not running:
        return f"no fleet running ({note}{paused}; `emugen up` starts one)"
    return f"{'PAUSED' if fleet['paused'] else 'running'} ({note})"


def _due_lines(due: dict[str, Any] | None) -> list[str]:
    if due is None:
        return []
    if not due["known"]:
        return [f"due: unknown ({due['note']})"]
    return ["due (UTC):", *(f"  {d['line']}" for d in due["streams"].values())]


def _landing_line(landing: dict[str, Any]) -> str:
    line = f"landing zone: {landing['files']} files"
    last = landing["last_error"]
    if last is None:
        return line + ", no errors"
    return (
        line + f", {landing['failing_batches']} batch(es) NOT LANDED; last error "
        f"({last['batch_id']}, {last['attempts']} attempts): {last['error']}"
    )
