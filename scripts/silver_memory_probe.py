"""Peak RSS of silver on PostgreSQL for one big events batch, with a chosen bronze page size.

    .venv/bin/python scripts/silver_memory_probe.py --page 1000000000  # one page, as before
    .venv/bin/python scripts/silver_memory_probe.py --page 100000      # today's PAGE

Runs on a private schema of the PostgreSQL at --database (dropped afterwards); prints the
stages' times and the process's peak RSS after bronze and after silver (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from emugen.db.session import make_engine, write_session
from emugen.lab import peak_rss_mb, private_database
from emugen.lab.pipeline import land_events, with_companies
from emugen.pipeline import gold, silver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", type=int, default=silver.PAGE)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    silver.PAGE = args.page
    with tempfile.TemporaryDirectory() as folder, \
            private_database(args.database, Path(folder), "probe") as url:
        engine = make_engine(url)
        settings, _ = with_companies(engine, folder)
        t0 = time.perf_counter()
        landed = land_events(engine, settings, args.events)
        t1, after_bronze = time.perf_counter(), peak_rss_mb()
        with write_session(engine) as session:
            silver.run(session, landed.batch_id)
        t2, after_silver = time.perf_counter(), peak_rss_mb()
        with write_session(engine) as session:
            gold.run(session, landed.batch_id)
        t3 = time.perf_counter()
        engine.dispose()
    print(f"page {args.page:,}, {args.events:,} events: bronze {t1 - t0:.1f} s (peak "
          f"{after_bronze:.0f} MB), silver {t2 - t1:.1f} s (peak {after_silver:.0f} MB), gold "
          f"{t3 - t2:.1f} s; {args.events / (t3 - t0):,.0f} events/s end to end")


if __name__ == "__main__":
    main()
