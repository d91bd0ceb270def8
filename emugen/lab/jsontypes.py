"""JSON column benchmark: text vs json vs jsonb on PostgreSQL for bronze payloads and specs."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emugen.errors import import_extra
from emugen.generate import build_spec, draft
from emugen.lab import bench_settings, private_database
from emugen.vocabulary import Mode

if TYPE_CHECKING:
    import psycopg

KINDS = ("text", "json", "jsonb")


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _load(conn: psycopg.Connection, kind: str, rows: list[tuple[int, str]]) -> float:
    """Seconds to COPY the rows into a fresh table with a `kind` payload, and to read them."""
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS payloads_{kind}")
        cur.execute(f"CREATE TABLE payloads_{kind} (row_no integer PRIMARY KEY, payload {kind})")
        with cur.copy(f"COPY payloads_{kind} (row_no, payload) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        cur.execute(f"SELECT payload::text FROM payloads_{kind} ORDER BY row_no")
        cur.fetchall()
    return time.perf_counter() - started


def bench_json_types(database: str, events: int = 100_000, repeat: int = 3) -> dict[str, Any]:
    """Best-of-`repeat` seconds per column type (alternated in one run) to store and read the
    bench batch's payloads, and whether each type keeps them as generated."""
    psycopg = import_extra("psycopg", "postgres", "emugen bench json-types")
    spec = build_spec(
        bench_settings(), "events", 1, watermark=2_000, size=events, mode=Mode.production
    )
    planned = draft(spec)
    lines = [line for chunk in planned.line_chunks() for line in chunk]
    clean = [(i, line) for i, line in enumerate(lines) if _parses(line)]
    spec_text = spec.model_dump_json()
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    kept: dict[str, bool] = {}
    with (
        tempfile.TemporaryDirectory() as folder,
        private_database(database, Path(folder), "json") as url,
        psycopg.connect(url) as conn,
    ):
        for _ in range(repeat):
            for kind in KINDS:
                times[kind].append(_load(conn, kind, clean))
        for kind in KINDS:
            with conn.cursor() as cur:
                cur.execute(f"SELECT %s::{kind}::text", (spec_text,))
                row = cur.fetchone()
                kept[kind] = row is not None and row[0] == spec_text
                cur.execute(f"DROP TABLE payloads_{kind}")
        conn.commit()
    return {
        "events": len(lines),
        "parsable": len(clean),
        "repeat": repeat,
        "seconds": {k: min(v) for k, v in times.items()},
        "spec_kept_as_written": kept,
    }


def format_json_types(r: dict[str, Any]) -> str:
    base = r["seconds"]["text"]
    lines = [
        f"JSON column types on PostgreSQL: COPY then read back the {r['parsable']:,} "
        f"payloads of the batch's {r['events']:,} that parse (a malformed one fits "
        f"only in text), best of {r['repeat']} alternated runs"
    ]
    for kind, seconds in r["seconds"].items():
        lines.append(
            f"  {kind:6s} {seconds:6.3f} s  {seconds / base:4.2f}x text   "
            f"spec kept as written: {'yes' if r['spec_kept_as_written'][kind] else 'no'}"
        )
    return "\n".join(lines)
