"""One-off measurements the benchmark notes cite: a stage's CPU, silver's memory, a live stage log.

- `stage_cpu`: wall and CPU seconds of one production events batch's stages on SQLite, and a
  hash of what they stored. CPU time is what a shared machine's load disturbs least, so two
  trees are compared by running it once per tree, alternated (PYTHONPATH=<tree>); equal
  hashes mean equal stored content.
- `silver_memory`: peak RSS of silver on PostgreSQL for one big events batch, with a chosen
  bronze page size (a private schema, dropped afterwards).
- `stage_log`: beside a running soak, once a minute, each stage's mean time for the batches
  made in the last minute, read-only (retention prunes batch rows, so it is sampled live).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from emugen.db.session import make_engine, write_session
from emugen.lab import peak_rss_mb, private_database
from emugen.lab.pipeline import bench_engine, land_events, with_companies
from emugen.pipeline import gold, silver

HASHED = ("silver_events", "quarantine", "gold_window_drivers")
STAGES = """SELECT stream, count(*), avg(generate_ms), avg(bronze_ms), avg(silver_ms),
avg(gold_ms), avg(length(spec)) FROM batches WHERE generated_at >= ? GROUP BY stream"""


def content_hash(path: str) -> str:
    """The first 12 hex digits of a sha256 over the tables the stages wrote, in key order."""
    conn = sqlite3.connect(path)
    digest = hashlib.sha256()
    for table in HASHED:
        for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3"):  # noqa: S608
            digest.update(repr(row).encode())
    conn.close()
    return digest.hexdigest()[:12]


def stage_cpu(size: int) -> str:
    """One line: each stage's wall and CPU seconds for `size` events, the hash, the peak RSS."""
    timings = []
    with bench_engine(None) as engine, tempfile.TemporaryDirectory() as zone:
        settings, _ = with_companies(engine, zone)
        wall, cpu = time.perf_counter(), time.process_time()
        landed = land_events(engine, settings, size)
        timings.append(("gen+bronze", time.perf_counter() - wall, time.process_time() - cpu))
        for name, stage in (("silver", silver), ("gold", gold)):
            wall, cpu = time.perf_counter(), time.process_time()
            with write_session(engine) as session:
                stage.run(session, landed.batch_id)
            timings.append((name, time.perf_counter() - wall, time.process_time() - cpu))
        digest = content_hash(str(engine.url.database))
    return (
        " ".join(f"{n} wall {w:.3f} cpu {c:.3f}" for n, w, c in timings)
        + f" hash {digest} peak RSS {peak_rss_mb():.0f} MB"
    )


def silver_memory(page: int, events: int, database: str) -> str:
    """One line: bronze, silver and gold times and the peak RSS after bronze and silver."""
    silver.PAGE = page
    with (
        tempfile.TemporaryDirectory() as folder,
        private_database(database, Path(folder), "probe") as url,
    ):
        engine = make_engine(url)
        settings, _ = with_companies(engine, folder)
        t0 = time.perf_counter()
        landed = land_events(engine, settings, events)
        t1, after_bronze = time.perf_counter(), peak_rss_mb()
        with write_session(engine) as session:
            silver.run(session, landed.batch_id)
        t2, after_silver = time.perf_counter(), peak_rss_mb()
        with write_session(engine) as session:
            gold.run(session, landed.batch_id)
        t3 = time.perf_counter()
        engine.dispose()
    return (
        f"page {page:,}, {events:,} events: bronze {t1 - t0:.1f} s (peak "
        f"{after_bronze:.0f} MB), silver {t2 - t1:.1f} s (peak {after_silver:.0f} MB), gold "
        f"{t3 - t2:.1f} s; {events / (t3 - t0):,.0f} events/s end to end"
    )


def stage_line(db: str) -> str:
    """The last minute's stage means per stream from a SQLite store, opened read-only."""
    since = (datetime.now(UTC) - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        rows = conn.execute(STAGES, (since,)).fetchall()
        mark = conn.execute(
            "SELECT coalesce(max(length(value)), 0) FROM control_state "
            "WHERE key = 'company_settled'"
        ).fetchone()[0]
        made = conn.execute(
            "SELECT first_ordinal + ordinal_count FROM batches WHERE stream = "
            "'companies' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    finally:
        conn.close()
    parts = [
        f"{s} n={n} gen {g:.1f} bronze {b:.1f} silver {si or 0:.1f} gold {go or 0:.1f} "
        f"spec {sp:.0f}"
        for s, n, g, b, si, go, sp in rows
    ]
    return (
        f"{datetime.now(UTC):%H:%M:%S} load {os.getloadavg()[0]:.2f} companies "
        f"{made[0] if made else 0} mark {mark} " + " | ".join(parts)
    )


def stage_log(db: str, out: Path, seconds: float, every_s: float = 60) -> None:
    """Append `stage_line` to `out` every `every_s` seconds for `seconds`."""
    end = time.time() + seconds
    with open(out, "a", encoding="utf-8") as fh:
        while time.time() < end:
            try:
                fh.write(stage_line(db) + "\n")
            except sqlite3.Error as exc:
                fh.write(f"error {exc}\n")
            fh.flush()
            time.sleep(every_s)
