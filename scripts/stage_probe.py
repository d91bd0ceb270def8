"""Once a minute, each stage's mean time for the batches a running soak made in the last minute.

    .venv/bin/python scripts/stage_probe.py var/soak-60m-0.1/soak.db stages.log 3300

A read-only probe beside `emugen soak` (one indexed query a minute): generate, bronze, silver
and gold ms per stream, the events spec size, the settled watermark mark's size, the companies
made and the load average, so a stage whose cost grows with the store shows apart from the
machine's load. Retention prunes the batch rows, so this is sampled live.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta

STAGES = """SELECT stream, count(*), avg(generate_ms), avg(bronze_ms), avg(silver_ms),
avg(gold_ms), avg(length(spec)) FROM batches WHERE generated_at >= ? GROUP BY stream"""


def line(db: str) -> str:
    since = (datetime.now(UTC) - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        rows = conn.execute(STAGES, (since,)).fetchall()
        mark = conn.execute("SELECT coalesce(max(length(value)), 0) FROM control_state "
                            "WHERE key = 'company_settled'").fetchone()[0]
        made = conn.execute("SELECT first_ordinal + ordinal_count FROM batches WHERE stream = "
                            "'companies' ORDER BY seq DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    parts = [f"{s} n={n} gen {g:.1f} bronze {b:.1f} silver {si or 0:.1f} gold {go or 0:.1f} "
             f"spec {sp:.0f}" for s, n, g, b, si, go, sp in rows]
    return (f"{datetime.now(UTC):%H:%M:%S} load {os.getloadavg()[0]:.2f} companies "
            f"{made[0] if made else 0} mark {mark} " + " | ".join(parts))


def main() -> None:
    db, out, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    end = time.time() + seconds
    with open(out, "a", encoding="utf-8") as fh:
        while time.time() < end:
            try:
                fh.write(line(db) + "\n")
            except sqlite3.Error as exc:
                fh.write(f"error {exc}\n")
            fh.flush()
            time.sleep(60)


if __name__ == "__main__":
    main()
