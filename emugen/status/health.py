"""What the dashboard shows at one moment: health, latency, quality, recent batches.

Built from the same reads as `emugen status` (`report.batch_tally`, `report.control`,
`store.store_view`), so the page and the CLI never disagree about the store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from emugen.db.models import BatchRow, ConfigReload, SkippedTick
from emugen.errors import ConfigError
from emugen.fleet.control import is_paused, last_reload
from emugen.fleet.due import view as due_view
from emugen.settings import Settings
from emugen.sinks.lander import landing_health
from emugen.status.arrivals import revised_windows, stream_arrivals
from emugen.status.batches import latency, recent
from emugen.status.quality import quality
from emugen.status.report import batch_tally, control
from emugen.status.store import store_health
from emugen.vocabulary import Stream

THROUGHPUT_WINDOW_S = 300
MIN_RATE_WINDOW_S = 60
STALE_INTERVALS = 3  # no batch for this many intervals (plus a grace) while running: degraded
STALE_GRACE_S = 10


def config_summary(
    path: Path, settings: Settings | None, error: ConfigError | None
) -> dict[str, Any]:
    """The file's settings as the fleet will apply them, or why the file is rejected."""
    summary: dict[str, Any] = {
        "path": str(path),
        "valid": error is None,
        "problems": error.problems if error else [],
    }
    if settings is not None:
        summary.update(
            mode=settings.mode.value,
            seed=settings.seed,
            fingerprint=settings.fingerprint(),
            streams={},
        )
        for stream in Stream:
            cadence = settings.cadence(stream).model_dump(mode="json", exclude={"interval"})
            summary["streams"][stream.value] = {
                "interval_s": settings.interval(stream).total_seconds(),
                **cadence,
            }
    return summary


def _applied_mode(session: Session) -> str | None:
    """The mode of the last accepted reload: a rejected edit leaves the fleet on it."""
    row = last_reload(session, accepted=True)
    return row.mode if row is not None else None


def _empty_stream() -> dict[str, Any]:
    return {
        "batches": 0,
        "gold": 0,
        "in_flight": 0,
        "failed": 0,
        "records": 0,
        "last_batch_at": None,
        "last_gold_at": None,
        "age_s": None,
    }


def streams(session: Session, now: datetime) -> dict[str, dict[str, Any]]:
    """Per stream: batches by status, records, the last batch and its age."""
    found = {s.value: _empty_stream() for s in Stream}
    # counts from one covering index, the latest stamps from one index probe each per stream:
    # a single GROUP BY with max() would read every (wide) batch row
    for stream, status, n, records in batch_tally(session):
        entry = found.setdefault(stream, _empty_stream())
        entry["batches"] += n
        entry["records"] += records
        key = {"gold": "gold", "failed": "failed"}.get(status, "in_flight")
        entry[key] += n
    for stream, entry in found.items():
        entry["last_batch_at"] = session.scalar(
            select(func.max(BatchRow.generated_at)).where(BatchRow.stream == stream)
        )
        entry["last_gold_at"] = session.scalar(
            select(func.max(BatchRow.gold_at)).where(BatchRow.stream == stream)
        )
    for entry in found.values():
        if entry["last_batch_at"] is not None:
            entry["age_s"] = round((now - entry["last_batch_at"]).total_seconds(), 1)
            entry["last_batch_at"] = entry["last_batch_at"].isoformat()
        if entry["last_gold_at"] is not None:
            entry["last_gold_at"] = entry["last_gold_at"].isoformat()
    return found


def throughput(
    session: Session, now: datetime, window_s: float = THROUGHPUT_WINDOW_S
) -> dict[str, Any]:
    """Batches per minute and records per second over the last `window_s` seconds (or since
    the first batch when the store is younger, but over at least a minute: a rate over a few
    seconds of a young store overshoots)."""
    cutoff = now - timedelta(seconds=window_s)
    n, records = session.execute(
        select(func.count(), func.sum(BatchRow.record_count)).where(BatchRow.generated_at >= cutoff)
    ).one()
    oldest = session.scalar(select(func.min(BatchRow.generated_at)))
    span = window_s
    if oldest is not None and oldest > cutoff:
        span = min(window_s, max((now - oldest).total_seconds(), MIN_RATE_WINDOW_S))
    return {
        "window_s": round(span, 1),
        "batches": n,
        "batches_per_minute": round(n * 60 / span, 2),
        "records_per_second": round(int(records or 0) / span, 2),
    }


def _reasons(
    config: dict[str, Any],
    ctl: dict[str, Any],
    probe: dict[str, Any],
    per_stream: dict[str, dict[str, Any]],
) -> list[str]:
    """Why the fleet is degraded; empty when it is healthy (or merely paused)."""
    reasons = []
    if not config["valid"]:
        reasons.append(
            "the config file is invalid (the fleet keeps its running config): "
            + "; ".join(config["problems"])
        )
    last = ctl["last_reload"]
    if last is not None and not last["accepted"]:
        reasons.append("beat rejected the last config edit: " + "; ".join(last["problems"]))
    if probe["broker"]["ok"] is False:
        reasons.append(f"broker unreachable: {probe['broker']['error']}")
    elif probe["workers"]["ok"] is False:
        reasons.append("no worker answered a ping")
    if not ctl["paused"]:
        for stream, entry in per_stream.items():
            interval = config.get("streams", {}).get(stream, {}).get("interval_s")
            age = entry["age_s"]
            if interval and age is not None and age > STALE_INTERVALS * interval + STALE_GRACE_S:
                reasons.append(f"no {stream} batch for {age:.0f} s (interval {interval:g} s)")
    return reasons


def health(
    session: Session,
    config: dict[str, Any],
    probe: dict[str, Any],
    now: datetime | None = None,
    arrivals: dict[str, dict[str, int]] | None = None,
) -> dict[str, Any]:
    """Status (running, paused or degraded and why), mode, config, streams, queues, workers.
    `arrivals`: `stream_arrivals` already read (it scans the whole ledger; the dashboard
    reuses it until a batch lands)."""
    now = now or datetime.now(UTC)
    ctl = control(session)
    per_stream = streams(session, now)
    for name, counts in (arrivals or stream_arrivals(session)).items():
        per_stream.setdefault(name, _empty_stream())["arrivals"] = counts
    store = store_health(session, probe)
    reasons = store["problems"] + _reasons(config, ctl, probe, per_stream)
    landing = landing_health(session)
    if landing["last_error"] is not None:
        reasons.append(
            f"{landing['failing_batches']} batch(es) not in the landing zone: "
            f"{landing['last_error']['error']}"
        )
    status = "degraded" if reasons else "paused" if ctl["paused"] else "running"
    return {
        "status": status,
        "reasons": reasons,
        "now": now.isoformat(),
        "generation_mode": config.get("mode"),
        "applied_mode": _applied_mode(session),
        **ctl,
        "config": config,
        "streams": per_stream,
        "throughput": throughput(session, now),
        "in_flight": sum(s["in_flight"] for s in per_stream.values()),
        "queues": probe["queues"],
        "broker": probe["broker"],
        "workers": probe["workers"],
        "store": store,
        "landing": landing,
        # gold windows late data revised after they closed (shared by both streams' gold)
        "gold_windows": revised_windows(session),
        # what beat plans next per stream (published on the broker; see emugen.fleet.due)
        "due": due_view(probe.get("due"), now, ctl["paused"]),
    }


def snapshot(
    session: Session,
    config: dict[str, Any],
    probe: dict[str, Any],
    now: datetime | None = None,
    latest: int = 20,
    quality_report: dict[str, Any] | None = None,
    arrivals: dict[str, dict[str, int]] | None = None,
) -> dict[str, Any]:
    """Everything the page shows: health plus latency, quality and the recent batches."""
    return {
        **health(session, config, probe, now, arrivals),
        "latency": latency(session),
        "quality": quality_report or quality(session),
        "recent": recent(session, latest),
    }


def quality_key(session: Session) -> tuple[Any, ...]:
    """Changes whenever the quality report can: a batch lands, reaches silver or fails.

    Reaching gold changes nothing there, so the snapshot pushed for a gold commit (the one a
    developer waits for) reuses the report, which costs the most on a large store.
    """
    counts = dict(
        session.execute(select(BatchRow.status, func.count()).group_by(BatchRow.status)).all()
    )
    return quality_key_of(session, counts)


def quality_key_of(session: Session, counts: dict[str, int]) -> tuple[Any, ...]:
    """`quality_key` from batch counts per status already read."""
    return (
        sum(counts.values()),
        counts.get("silver", 0) + counts.get("gold", 0),
        counts.get("failed", 0),
        session.scalar(select(func.max(BatchRow.generated_at))),
    )


def version(session: Session) -> tuple[Any, ...]:
    """A cheap fingerprint of the store that changes whenever the snapshot would.

    Every stage moves a batch forward (bronze < silver < gold, or failed), so the batch count
    per status changes with each commit; it reads only the status index. Skips and reloads
    only ever append rows.
    """
    by_status = tuple(
        session.execute(
            select(BatchRow.status, func.count())
            .group_by(BatchRow.status)
            .order_by(BatchRow.status)
        ).all()
    )
    return (
        tuple(tuple(r) for r in by_status),
        session.scalar(select(func.max(SkippedTick.id))),
        session.scalar(select(func.max(ConfigReload.id))),
        # the pause flag only: the company marks also live in control_state, change with
        # every events batch (already counted above) and carry a growing list of ordinals
        is_paused(session),
    )
