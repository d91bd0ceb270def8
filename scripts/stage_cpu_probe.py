"""Stage wall and CPU seconds of one production events batch on SQLite, and a content hash.

    .venv/bin/python scripts/stage_cpu_probe.py            # the bench's 100,000 events
    .venv/bin/python scripts/stage_cpu_probe.py 1000000

CPU time (time.process_time) is what a shared machine's load disturbs least, so old and new
trees are compared by running this once per tree, alternated (PYTHONPATH=<tree>). The hash
covers silver_events, quarantine and gold_window_drivers: equal hashes, equal stored content.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
import tempfile
import time

from emugen.db.session import write_session
from emugen.lab import peak_rss_mb
from emugen.lab.pipeline import bench_engine, land_events, with_companies
from emugen.pipeline import gold, silver

HASHED = ("silver_events", "quarantine", "gold_window_drivers")


def content_hash(path: str) -> str:
    conn = sqlite3.connect(path)
    digest = hashlib.sha256()
    for table in HASHED:
        for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3"):  # noqa: S608
            digest.update(repr(row).encode())
    conn.close()
    return digest.hexdigest()[:12]


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
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
    print(" ".join(f"{n} wall {w:.3f} cpu {c:.3f}" for n, w, c in timings),
          f"hash {digest} peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
