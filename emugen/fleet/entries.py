"""Beat's entries, a pure function of the config in force: one generator per stream, the
reaper and the pruner; and the tick key each sent tick is stamped with."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from celery.schedules import schedule

from emugen.fleet.names import GENERATE_BATCH, GENERATE_QUEUE, PIPELINE_QUEUE, PRUNE, REAP
from emugen.settings import Settings
from emugen.vocabulary import Stream


def entries_for(settings: Settings) -> dict[str, dict[str, Any]]:
    """Beat entries for the active mode: one generator per stream, the reaper, the pruner.

    Each message expires after about one interval: a tick that waited that long is stale,
    and the next one is already on its way.
    """
    entries: dict[str, dict[str, Any]] = {}
    for stream in Stream:
        every = settings.interval(stream)
        entries[f"generate-{stream.value}"] = {
            "task": GENERATE_BATCH,
            "schedule": schedule(every),
            "args": (stream.value,),
            "kwargs": {"mode": settings.mode.value},
            "options": {"queue": GENERATE_QUEUE, "expires": every.total_seconds()},
        }
    reaper = settings.fleet.reaper_interval
    entries["reap"] = {
        "task": REAP,
        "schedule": schedule(reaper),
        "options": {"queue": PIPELINE_QUEUE, "expires": reaper.total_seconds()},
    }
    if settings.fleet.retain_batches_for is not None:
        every = settings.fleet.prune_interval
        entries["prune"] = {
            "task": PRUNE,
            "schedule": schedule(every),
            "options": {"queue": PIPELINE_QUEUE, "expires": every.total_seconds()},
        }
    return entries


def tick_time(now: datetime | None = None) -> datetime:
    """The tick key: UTC, to the millisecond (the resolution batch intervals use)."""
    now = now or datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
