"""The highest sustainable cadence: step the interval down until backpressure starts skipping.

One private fleet per worker count (redis-server, N workers with `-c 1`, beat) on 20-record
batches of both streams, with a small `fleet.max_queue_depth` and `max_in_flight` so that a
fleet that cannot keep up skips ticks instead of queueing them. The interval is lowered by
rewriting the config (beat applies it within a second); each step runs for a fixed time after
a short settling pause. A step is sustainable when no tick of it was skipped (backpressure,
or expired waiting for a worker), at least 90 % of the ticks offered became batches, and
batches in flight did not trend up (the mean of the step's second half at most one above the
first half's, and never at the limit). The baseline is the rate one process reaches with no
broker at all (`run_pipeline` on the same batches).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from emugen.db.models import BatchRow, SkippedTick
from emugen.db.session import engine_for, read_session
from emugen.fleet.backpressure import in_flight
from emugen.fleet.supervisor import wait_for
from emugen.lab import private_database
from emugen.lab.fleet import floor_latencies, settled
from emugen.lab.processes import PrivateFleet
from emugen.status.stats import percentile

STEPS = (1.0, 0.5, 0.25, 0.2, 0.15, 0.1)
SETTLE_S = 2.0
LIMITS = {"max_queue_depth": 4, "max_in_flight": 8}


def _step(fleet: PrivateFleet, interval: float, seconds: float, size: int) -> dict:
    engine = engine_for(fleet.database_url)
    fleet.set_interval(interval)
    time.sleep(SETTLE_S)  # beat re-plans within a second; the previous step's ticks drain
    start = datetime.now(UTC)
    flights = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with read_session(engine) as session:
            flights.append(in_flight(session))
        time.sleep(0.25)
    end = datetime.now(UTC)
    wait_for(lambda: settled(fleet.database_url), 60, "the step's batches to reach gold", 0.2)
    with read_session(engine) as session:
        rows = session.execute(
            select(BatchRow.scheduled_at, BatchRow.gold_at).where(
                BatchRow.scheduled_at >= start, BatchRow.scheduled_at < end
            )
        ).all()
        skips = dict(
            session.execute(
                select(SkippedTick.reason, func.count())
                .where(SkippedTick.scheduled_at >= start, SkippedTick.scheduled_at < end)
                .group_by(SkippedTick.reason)
            ).all()
        )
    span = (end - start).total_seconds()
    offered = 2 * span / interval  # both streams tick every interval
    latencies = [(g - s).total_seconds() * 1000 for s, g in rows if g is not None]
    # a backlog that builds up shows as batches in flight trending up within the step
    half = len(flights) // 2
    early, late = flights[:half] or [0], flights[half:] or [0]
    bounded = max(flights, default=0) < LIMITS["max_in_flight"] and (
        statistics.mean(late) <= statistics.mean(early) + 1
    )
    return {
        "interval_s": interval,
        "seconds": round(span, 1),
        "offered": round(offered),
        "batches": len(rows),
        "batches_per_s": round(len(rows) / span, 2),
        "records_per_s": round(len(rows) * size / span),
        "skipped": skips,
        "in_flight_max": max(flights, default=0),
        "tick_to_gold_p95_ms": percentile(latencies, 95),
        "sustainable": not skips and len(rows) >= 0.9 * offered and bounded,
    }


def bench_cadence(
    workers: int = 1,
    database: str | None = None,
    step_seconds: float = 10,
    size: int = 20,
    steps: tuple[float, ...] = STEPS,
) -> dict:
    with tempfile.TemporaryDirectory(prefix="emugen-cadence-") as name:
        folder = Path(name)
        results = []
        with (
            private_database(database, folder) as url,
            PrivateFleet(
                folder, url, steps[0], workers=workers, size=(size, size), fleet=LIMITS
            ) as fleet,
        ):
            fleet.start()
            dialect = engine_for(url).dialect.name
            for interval in steps:
                step = _step(fleet, interval, step_seconds, size)
                results.append(step)
                if not step["sustainable"]:
                    break
        with private_database(database, folder, "floor") as url:
            floor = floor_latencies(url, 20, size)
    best = [s for s in results if s["sustainable"]]
    floor_rate = 1000 / statistics.median(floor)
    top = best[-1] if best else None
    return {
        "database": dialect,
        "workers": workers,
        "records_per_batch": size,
        "limits": LIMITS,
        "steps": results,
        "sustainable_interval_s": top["interval_s"] if top else None,
        "sustainable_batches_per_s": top["batches_per_s"] if top else 0.0,
        "sustainable_records_per_s": top["records_per_s"] if top else 0,
        "reached_min_interval": top is not None and top["interval_s"] == steps[-1],
        "floor_batches_per_s": round(floor_rate, 1),
        "ratio_to_floor": round((top["batches_per_s"] if top else 0) / floor_rate, 3),
    }


def format_cadence(r: dict) -> str:
    lines = [
        f"cadence on {r['database']}: {r['workers']} worker(s), {r['records_per_batch']} "
        f"records per batch, fleet limits {r['limits']}"
    ]
    for s in r["steps"]:
        lines.append(
            f"  every {s['interval_s']:5.2f} s: offered {s['offered']:4d}, landed "
            f"{s['batches']:4d} ({s['batches_per_s']:5.1f} batches/s), skipped "
            f"{s['skipped'] or 0}, in flight max {s['in_flight_max']}, p95 "
            f"{s['tick_to_gold_p95_ms']:.0f} ms -> "
            f"{'sustainable' if s['sustainable'] else 'NOT sustainable'}"
        )
    best = r["sustainable_interval_s"]
    note = " (the shortest interval the config allows)" if r["reached_min_interval"] else ""
    lines.append(
        f"  highest sustainable: {'none' if best is None else f'every {best:g} s'}{note} = "
        f"{r['sustainable_batches_per_s']:.1f} batches/s; in-process floor "
        f"{r['floor_batches_per_s']:.1f} batches/s ({r['ratio_to_floor']:.0%} of it)"
    )
    return "\n".join(lines)
