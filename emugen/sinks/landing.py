"""The landing zone's pure part: where a batch's files go, their bytes, and its manifest.

Nothing here touches a file system or the store, so the same batch always yields the same
paths and the same bytes (a re-delivered task, the reaper and `emugen land verify` agree).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

FORMATS = ("jsonl", "parquet")
MANIFESTS = "_manifests"  # leading "_": Spark's and DuckDB's file sources skip it
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class BatchFacts:
    """What the landing zone needs to know of a batch: no truth, ever."""

    batch_id: str
    stream: str
    seq: int
    mode: str
    spec: str  # the BatchSpec JSON as stored with the batch
    interval_start: datetime
    interval_end: datetime
    scheduled_at: datetime
    record_count: int


@dataclass(frozen=True)
class LandingFile:
    """One file to write: its path under the root, its bytes and what they hold."""

    path: str
    data: bytes
    rows: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def data_path(facts: BatchFacts, fmt: str) -> str:
    """`<stream>/date=YYYY-MM-DD/hour=HH/<batch_id>.<ext>`: hive partitions from the interval."""
    start = facts.interval_start.astimezone(UTC)
    return f"{facts.stream}/date={start:%Y-%m-%d}/hour={start:%H}/{facts.batch_id}.{fmt}"


def manifest_path(facts: BatchFacts) -> str:
    return f"{MANIFESTS}/{facts.stream}/{facts.batch_id}.json"


def jsonl_bytes(lines: Sequence[str]) -> bytes:
    """The raw records exactly as generated, line i = row i, each ending in a newline."""
    if not lines:
        return b""
    return ("\n".join(lines) + "\n").encode("utf-8")


def parquet_bytes(facts: BatchFacts, lines: Sequence[str]) -> bytes:
    """batch_id, row_no, payload (the raw JSON text, malformed or not), scheduled_at.

    Fixed writer options and no pandas metadata: the footer holds only the schema and
    pyarrow's version string, so the same batch gives the same bytes with the same pyarrow.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(lines)
    stamp = pa.scalar(facts.scheduled_at.astimezone(UTC), pa.timestamp("us", tz="UTC"))
    table = pa.table({
        # constant columns built without a Python list of n items (a third of the cost)
        "batch_id": pa.repeat(pa.scalar(facts.batch_id, pa.string()), n),
        "row_no": pa.array(np.arange(n, dtype=np.int64)),
        "payload": pa.array(lines, pa.string()),
        "scheduled_at": pa.repeat(stamp, n),
    })
    sink = io.BytesIO()
    # no min/max statistics for payload: comparing 100k long strings costs more than the
    # compression, and no reader prunes on raw JSON text
    pq.write_table(table, sink, compression="zstd", use_dictionary=["batch_id"],
                   write_statistics=["batch_id", "row_no", "scheduled_at"],
                   store_schema=False, version="2.6")
    return sink.getvalue()


def data_file(facts: BatchFacts, lines: Sequence[str], fmt: str) -> LandingFile:
    if fmt not in FORMATS:
        raise ValueError(f"unknown landing format {fmt!r}; allowed: {', '.join(FORMATS)}")
    data = jsonl_bytes(lines) if fmt == "jsonl" else parquet_bytes(facts, lines)
    return LandingFile(data_path(facts, fmt), data, len(lines))


def manifest_file(facts: BatchFacts, files: Sequence[LandingFile], fmt: str) -> LandingFile:
    """The batch's spec and counts and each file's sha256 (no wall-clock stamp: re-landing a
    batch writes the same manifest). The truth is never in it."""
    body: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "batch_id": facts.batch_id, "stream": facts.stream, "seq": facts.seq,
        "mode": facts.mode, "format": fmt,
        "interval_start": _iso(facts.interval_start), "interval_end": _iso(facts.interval_end),
        "scheduled_at": _iso(facts.scheduled_at), "record_count": facts.record_count,
        "spec": json.loads(facts.spec),
        "files": [{"path": f.path, "rows": f.rows, "bytes": len(f.data), "sha256": f.sha256}
                  for f in files],
    }
    data = (json.dumps(body, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return LandingFile(manifest_path(facts), data, 0)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def read_manifest(data: bytes) -> dict[str, Any]:
    return json.loads(data.decode("utf-8"))
