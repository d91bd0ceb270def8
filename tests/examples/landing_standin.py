"""A STAND-IN for emugen's landing zone (emugen/sinks/), built from a store: replace when merged.

It writes bronze in the layout the real sink will use, Parquet form only
(`<root>/<stream>/date=YYYY-MM-DD/hour=HH/<batch_id>.parquet` with columns batch_id, row_no,
payload, scheduled_at; manifests under `<root>/_manifests/<stream>/<batch_id>.json` carrying the
batch spec), each file under a `.name.tmp` temporary renamed into place. The truth is not written.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, select

from emugen.db.models import BatchRow, BronzeRecord, InjectedDefect
from emugen.db.session import read_session

SCHEMA = pa.schema([("batch_id", pa.string()), ("row_no", pa.int32()), ("payload", pa.string()),
                    ("scheduled_at", pa.timestamp("us", tz="UTC"))])


@dataclass(frozen=True)
class Truth:
    """What the store says a consumer should have done, keyed by (batch_id, row_no)."""

    bronze: dict[tuple[str, int], str]  # every landed row -> its stream
    defects: dict[tuple[str, int], str]  # defective rows -> expected reason


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.tmp"
    temporary.write_bytes(data)
    os.replace(temporary, path)


def land_batch(engine: Engine, root: Path, batch_id: str) -> Path:
    """Write one bronze batch as Parquet plus its manifest; return the data file's path."""
    with read_session(engine) as session:
        batch = session.get(BatchRow, batch_id)
        assert batch is not None, batch_id
        rows = session.execute(select(BronzeRecord.row_no, BronzeRecord.payload)
                               .where(BronzeRecord.batch_id == batch_id)
                               .order_by(BronzeRecord.row_no)).all()
    start = batch.interval_start
    table = pa.table({"batch_id": [batch_id] * len(rows), "row_no": [r for r, _ in rows],
                      "payload": [p for _, p in rows],
                      "scheduled_at": [batch.scheduled_at] * len(rows)}, schema=SCHEMA)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    path = (root / batch.stream / f"date={start:%Y-%m-%d}" / f"hour={start:%H}"
            / f"{batch_id}.parquet")
    _atomic_write(path, sink.getvalue().to_pybytes())
    manifest = {"batch_id": batch_id, "stream": batch.stream, "rows": len(rows),
                "spec": json.loads(batch.spec)}
    _atomic_write(root / "_manifests" / batch.stream / f"{batch_id}.json",
                  json.dumps(manifest).encode())
    return path


def landed_order(engine: Engine) -> list[str]:
    """Batch ids in the order emugen landed them in bronze (companies first in each round)."""
    with read_session(engine) as session:
        return list(session.scalars(select(BatchRow.batch_id)
                                    .order_by(BatchRow.bronze_at, BatchRow.batch_id)))


def truth(engine: Engine) -> Truth:
    with read_session(engine) as session:
        streams = dict(session.execute(select(BatchRow.batch_id, BatchRow.stream)).all())
        bronze = {(b, r): streams[b] for b, r in
                  session.execute(select(BronzeRecord.batch_id, BronzeRecord.row_no))}
        defects = {(b, r): reason for b, r, reason in session.execute(
            select(InjectedDefect.batch_id, InjectedDefect.row_no,
                   InjectedDefect.expected_reason))}
    return Truth(bronze, defects)
