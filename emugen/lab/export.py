"""Export benchmark: peak RSS of `emugen export` at two store sizes (flat = streaming works)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from emugen.db.session import init_db, make_engine

BATCH = 100_000


def fill_store(path: Path, rows: int) -> None:
    """A SQLite store holding `rows` bronze event records (200-byte JSON) in 100k batches."""
    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)
    engine.dispose()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    con = sqlite3.connect(path)
    for n, first in enumerate(range(0, rows, BATCH), start=1):
        batch_id, size = f"events-{n:09d}", min(BATCH, rows - first)
        at = (start + timedelta(minutes=15 * n)).isoformat(" ", "microseconds")[:26]
        con.execute(
            "INSERT INTO batches (batch_id, stream, seq, mode, seed, config_fingerprint, "
            "generator_version, spec, interval_start, interval_end, scheduled_at, first_ordinal,"
            " ordinal_count, record_count, injected_count, injected_by_type, status, "
            "generated_at, bronze_at, generate_ms, bronze_ms) VALUES "
            "(?, 'events', ?, 'production', 42, 'bench', 1, '{}', ?, ?, ?, 0, 0, ?, 0, '{}', "
            "'bronze', ?, ?, 0, 0)",
            (batch_id, n, at, at, at, size, at, at),
        )
        con.executemany(
            "INSERT INTO bronze_records (batch_id, row_no, payload) VALUES (?, ?, ?)",
            (
                (
                    batch_id,
                    i,
                    json.dumps(
                        {
                            "event_id": f"{n:08d}-{i:027d}",
                            "company_id": "c" * 36,
                            "event_type": "delivered",
                            "n": i,
                        }
                    ),
                )
                for i in range(size)
            ),
        )
        con.commit()
    con.close()


def measure(config: Path, kind: str, fmt: str, out: Path) -> dict:
    """Run `emugen export` in a child process; its wall time and peak RSS (from wait4)."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emugen",
            "export",
            kind,
            "--format",
            fmt,
            "--out",
            str(out),
            "--config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(child.stderr.read().decode() if child.stderr else "export failed")
    return {
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "bytes": out.stat().st_size,
    }


def bench_export(rows: int = 2_000_000, fmt: str = "parquet") -> dict:
    """bronze and truth exports of a store with rows/10 and with rows records."""
    result: dict = {"rows": rows, "format": fmt, "runs": []}
    with tempfile.TemporaryDirectory(prefix="emugen-bench-export-") as tmp:
        for size in (max(rows // 10, 1), rows):
            store = Path(tmp) / f"store-{size}.db"
            fill_store(store, size)
            config = Path(tmp) / f"emugen-{size}.yaml"
            config.write_text(f"database_url: sqlite:///{store}\n")
            for kind in ("bronze", "truth"):
                figures = measure(config, kind, fmt, Path(tmp) / f"{kind}-{size}.{fmt}")
                result["runs"].append({"kind": kind, "records": size, **figures})
    return result


def format_export(r: dict) -> str:
    lines = [f"export: SQLite store -> {r['format']}, peak RSS of the export process"]
    for run in r["runs"]:
        lines.append(
            f"  {run['kind']:<7}{run['records']:>11,} records  {run['seconds']:7.1f} s  "
            f"{run['records'] / run['seconds']:>10,.0f} rows/s  peak RSS "
            f"{run['peak_rss_mb']:6.0f} MB  ({run['bytes'] / 2**20:,.0f} MiB written)"
        )
    by_kind: dict[str, list[float]] = {}
    for run in r["runs"]:
        by_kind.setdefault(run["kind"], []).append(run["peak_rss_mb"])
    for kind, (small, large) in by_kind.items():
        lines.append(f"  {kind}: 10x the rows -> peak RSS x{large / small:.2f}")
    return "\n".join(lines)
