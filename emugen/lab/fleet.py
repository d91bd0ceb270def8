"""Fleet benchmark: real redis-server, one worker, beat at 1 s; tick -> gold vs in-process floor."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from emugen.db.models import BatchRow
from emugen.db.session import engine_for, init_db, make_engine, read_session
from emugen.fleet.supervisor import wait_for
from emugen.lab import private_database
from emugen.lab.processes import PrivateFleet
from emugen.pipeline.runner import run_pipeline
from emugen.settings import parse_settings
from emugen.status.stats import percentile

WARMUP_BATCHES = 3  # per stream: the worker's first tasks pay for imports and connections


def settled(database_url: str) -> bool:
    """No batch is waiting for silver or gold."""
    with read_session(engine_for(database_url)) as session:
        pending = session.scalars(
            select(BatchRow.batch_id).where(BatchRow.status.in_(("bronze", "silver"))).limit(1)
        ).all()
    return not pending


def all_batches(database_url: str) -> list[BatchRow]:
    with read_session(engine_for(database_url)) as session:
        rows = list(session.scalars(select(BatchRow).order_by(BatchRow.scheduled_at)))
        session.expunge_all()
    return rows


def run_fleet(
    folder: Path, database_url: str, seconds: float, interval: float, size: int
) -> list[BatchRow]:
    with PrivateFleet(folder, database_url, interval, size=(size, size)) as fleet:
        fleet.start()
        time.sleep(seconds)
        fleet.stop_child("beat")
        wait_for(lambda: settled(database_url), 60, "every batch to reach gold", every=0.2)
        return all_batches(database_url)


def floor_latencies(database_url: str, batches: int, size: int) -> list[float]:
    """The same batches (same config, same sizes) through every layer in one process."""
    zone = tempfile.mkdtemp(prefix="emugen-floor-landing-")  # like the fleet's, never var/
    settings = parse_settings(
        {
            "mode": "emulated",
            "seed": 42,
            "landing": {"root": zone},
            "companies": {
                "emulated": {"interval": 1, "min_batch_size": size, "max_batch_size": size}
            },
            "events": {"emulated": {"interval": 1, "min_batch_size": size, "max_batch_size": size}},
        },
        env=False,
    )
    engine = make_engine(database_url)
    init_db(engine)
    done = run_pipeline(engine, settings, max(batches, WARMUP_BATCHES + 5))
    engine.dispose()
    shutil.rmtree(zone, ignore_errors=True)
    return [p.seconds * 1000 for p in done[2 * WARMUP_BATCHES :]]


def bench_fleet(
    seconds: float = 60, interval: float = 1.0, size: int = 20, database: str | None = None
) -> dict:
    with tempfile.TemporaryDirectory(prefix="emugen-fleet-") as name:
        folder = Path(name)
        with private_database(database, folder) as url:
            rows = run_fleet(folder, url, seconds, interval, size)
            dialect = make_engine(url).dialect.name
        by_stream: dict[str, list[BatchRow]] = {}
        for row in rows:
            by_stream.setdefault(row.stream, []).append(row)
        latencies, errors = [], []
        for stream_rows in by_stream.values():
            stream_rows.sort(key=lambda r: r.seq)
            for row in stream_rows[WARMUP_BATCHES:]:
                if row.gold_at is not None:  # a failed batch has no latency: not_gold counts it
                    latencies.append((row.gold_at - row.scheduled_at).total_seconds() * 1000)
            for a, b in zip(stream_rows, stream_rows[1:], strict=False):
                gap = (b.scheduled_at - a.scheduled_at).total_seconds()
                errors.append(abs(gap - interval) * 1000)
        failed = sum(1 for r in rows if r.status != "gold")
        per_stream = min(len(v) for v in by_stream.values()) if by_stream else 0
        with private_database(database, folder, "floor") as url:
            floor = floor_latencies(url, per_stream, size)
    return {
        "database": dialect,
        "seconds": seconds,
        "interval_s": interval,
        "records_per_batch": size,
        "batches": len(rows),
        "not_gold": failed,
        "measured": len(latencies),
        "tick_to_gold_p50_ms": percentile(latencies, 50),
        "tick_to_gold_p95_ms": percentile(latencies, 95),
        "tick_to_gold_p99_ms": percentile(latencies, 99),
        "tick_to_gold_max_ms": max(latencies, default=float("nan")),
        "dispatch_error_p50_ms": percentile(errors, 50),
        "dispatch_error_p99_ms": percentile(errors, 99),
        "floor_p50_ms": percentile(floor, 50),
        "floor_p95_ms": percentile(floor, 95),
        "floor_p99_ms": percentile(floor, 99),
        "p50_ratio_to_floor": percentile(latencies, 50) / statistics.median(floor),
        "p95_ratio_to_floor": percentile(latencies, 95) / percentile(floor, 95),
        "p99_ratio_to_floor": percentile(latencies, 99) / percentile(floor, 99),
    }


def format_fleet(r: dict) -> str:
    return "\n".join(
        [
            f"fleet: real redis-server, 1 worker (-c 1), beat every {r['interval_s']:g} s, "
            f"{r['records_per_batch']} records per batch, {r['database']}; {r['seconds']:g} s run, "
            f"{r['batches']} batches ({r['not_gold']} not in gold), "
            f"{r['measured']} measured after warm-up",
            f"  tick -> gold       p50 {r['tick_to_gold_p50_ms']:7.1f} ms   "
            f"p95 {r['tick_to_gold_p95_ms']:7.1f} ms   p99 {r['tick_to_gold_p99_ms']:7.1f} ms   "
            f"max {r['tick_to_gold_max_ms']:7.1f} ms",
            f"  dispatch interval error   p50 {r['dispatch_error_p50_ms']:6.1f} ms   "
            f"p99 {r['dispatch_error_p99_ms']:6.1f} ms",
            "  floor (same batches via run_pipeline in-process)  p50 "
            f"{r['floor_p50_ms']:7.1f} ms   "
            f"p95 {r['floor_p95_ms']:7.1f} ms   p99 {r['floor_p99_ms']:7.1f} ms",
            f"  fleet/floor        p50 {r['p50_ratio_to_floor']:.1f}x   "
            f"p95 {r['p95_ratio_to_floor']:.1f}x   p99 {r['p99_ratio_to_floor']:.1f}x",
        ]
    )
