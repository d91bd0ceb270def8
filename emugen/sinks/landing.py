"""The landing zone's pure part: where a batch's files go, their bytes, and its manifest.

Nothing here touches a file system or the store, so the same batch always yields the same
paths and the same bytes (a re-delivered task, the reaper and `emugen land verify` agree).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

FORMATS = ("jsonl", "parquet")
MANIFESTS = "_manifests"  # leading "_": Spark's and DuckDB's file sources skip it
MANIFEST_VERSION = 1
# Rows per Parquet row group: a batch up to this size gives the same bytes as writing it in
# one go (one row group); a bigger one is written a row group per ROW_GROUP rows instead of
# being held whole in memory. Bronze is read CHUNK rows at a time.
ROW_GROUP = 100_000
CHUNK = 20_000


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
    data: bytes  # empty for a file streamed to the zone: then digest and length say what it is
    rows: int
    digest: str | None = None
    length: int | None = None

    @property
    def sha256(self) -> str:
        return self.digest or hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data) if self.length is None else self.length


def data_path(facts: BatchFacts, fmt: str) -> str:
    """`<stream>/date=YYYY-MM-DD/hour=HH/<batch_id>.<ext>`: hive partitions from the interval."""
    start = facts.interval_start.astimezone(UTC)
    return f"{facts.stream}/date={start:%Y-%m-%d}/hour={start:%H}/{facts.batch_id}.{fmt}"


def manifest_path(facts: BatchFacts) -> str:
    return f"{MANIFESTS}/{facts.stream}/{facts.batch_id}.json"


def jsonl_pieces(chunks: Iterable[Sequence[str]]) -> Iterator[bytes]:
    """The raw records exactly as generated, line i = row i, each ending in a newline."""
    for lines in chunks:
        if lines:
            yield ("\n".join(lines) + "\n").encode("utf-8")


class _Pipe:
    """A write-only file for pyarrow that hands over what was written since the last take()."""

    closed = False

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def write(self, data: Any) -> int:
        piece = bytes(data)
        self.parts.append(piece)
        self.position += len(piece)
        return len(piece)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        taken, self.parts = b"".join(self.parts), []
        return taken


def _pool() -> Any:
    """malloc, not pyarrow's default mimalloc: mimalloc kept ~50 MB more resident than it
    handed out for one 100,000-row group (a worker's peak RSS, not pyarrow's own figure)."""
    import pyarrow as pa

    return pa.system_memory_pool()


def _parquet_table(facts: BatchFacts, payload: Any, first_row: int) -> Any:
    import numpy as np
    import pyarrow as pa

    n = len(payload)
    stamp = pa.scalar(facts.scheduled_at.astimezone(UTC), pa.timestamp("us", tz="UTC"))
    return pa.table(
        {
            # constant columns built without a Python list of n items (a third of the cost)
            "batch_id": pa.repeat(pa.scalar(facts.batch_id, pa.string()), n, memory_pool=_pool()),
            "row_no": pa.array(np.arange(first_row, first_row + n, dtype=np.int64)),
            "payload": payload,
            "scheduled_at": pa.repeat(stamp, n, memory_pool=_pool()),
        }
    )


def _row_groups(chunks: Iterable[Sequence[str]]) -> Iterator[Any]:
    """The payload as one contiguous Arrow array per ROW_GROUP rows (an empty batch: one
    empty array). Each chunk becomes Arrow text at once, so its Python strings can go; the
    parts are concatenated (a chunked column would page differently: other bytes)."""
    import pyarrow as pa

    parts: list[Any] = []
    held, groups = 0, 0
    for lines in chunks:
        at = 0
        while at < len(lines):
            take = lines[at : at + ROW_GROUP - held]
            parts.append(pa.array(take, pa.string(), memory_pool=_pool()))
            held, at = held + len(take), at + len(take)
            if held == ROW_GROUP:
                # the parts go before the group is written: never both beside the writer
                group = pa.concat_arrays(parts, memory_pool=_pool())
                parts, held, groups = [], 0, groups + 1
                yield group
                del group
    if held or not groups:
        yield (pa.concat_arrays(parts, memory_pool=_pool()) if parts else pa.array([], pa.string()))


def parquet_pieces(facts: BatchFacts, chunks: Iterable[Sequence[str]]) -> Iterator[bytes]:
    """batch_id, row_no, payload (the raw JSON text, malformed or not), scheduled_at; one row
    group per ROW_GROUP rows.

    Fixed writer options and no pandas metadata: the footer holds only the schema and
    pyarrow's version string, so the same batch gives the same bytes with the same pyarrow.
    """
    import pyarrow.parquet as pq

    sink, writer, rows = _Pipe(), None, 0
    for payload in _row_groups(chunks):
        table = _parquet_table(facts, payload, rows)
        if writer is None:
            # no min/max statistics for payload: comparing 100k long strings costs more than
            # the compression, and no reader prunes on raw JSON text
            writer = pq.ParquetWriter(
                sink,
                table.schema,
                compression="zstd",
                use_dictionary=["batch_id"],
                write_statistics=["batch_id", "row_no", "scheduled_at"],
                store_schema=False,
                version="2.6",
                memory_pool=_pool(),
            )
        writer.write_table(table)
        rows += len(payload)
        del payload, table  # before the next row group is built
        yield sink.take()
    assert writer is not None  # _row_groups yields at least one array
    writer.close()
    yield sink.take()


def parquet_bytes(facts: BatchFacts, lines: Sequence[str]) -> bytes:
    return b"".join(parquet_pieces(facts, [lines]))


def data_pieces(facts: BatchFacts, chunks: Iterable[Sequence[str]], fmt: str) -> Iterator[bytes]:
    if fmt not in FORMATS:
        raise ValueError(f"unknown landing format {fmt!r}; allowed: {', '.join(FORMATS)}")
    return jsonl_pieces(chunks) if fmt == "jsonl" else parquet_pieces(facts, chunks)


class Digest:
    """sha256, size and rows of a data file, taken as its pieces stream past."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.bytes = 0
        self.rows = 0

    def count(self, chunks: Iterable[Sequence[str]]) -> Iterator[Sequence[str]]:
        for lines in chunks:
            self.rows += len(lines)
            yield lines

    def hash(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        for piece in pieces:
            self.sha.update(piece)
            self.bytes += len(piece)
            yield piece


def manifest_file(facts: BatchFacts, files: Sequence[LandingFile], fmt: str) -> LandingFile:
    """The batch's spec and counts and each file's sha256 (no wall-clock stamp: re-landing a
    batch writes the same manifest). The truth is never in it."""
    body: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "batch_id": facts.batch_id,
        "stream": facts.stream,
        "seq": facts.seq,
        "mode": facts.mode,
        "format": fmt,
        "interval_start": _iso(facts.interval_start),
        "interval_end": _iso(facts.interval_end),
        "scheduled_at": _iso(facts.scheduled_at),
        "record_count": facts.record_count,
        "spec": json.loads(facts.spec),
        "files": [
            {"path": f.path, "rows": f.rows, "bytes": f.size, "sha256": f.sha256} for f in files
        ],
    }
    body.update(_arrival(body["spec"]))
    data = (json.dumps(body, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return LandingFile(manifest_path(facts), data, 0)


def _arrival(spec: dict[str, Any]) -> dict[str, Any]:
    """With arrival conditions: the contract version the batch was generated under, and for
    a delayed batch the batch whose file it was released after (no key otherwise)."""
    if "arrival" not in spec:
        return {}
    from emugen.generate import BatchSpec
    from emugen.generate.arrival import delay_of

    parsed = BatchSpec.model_validate(spec)
    assert parsed.arrival is not None
    out: dict[str, Any] = {"contract_version": parsed.arrival.contract_version}
    delay = delay_of(parsed)
    if delay:
        out["released_after"] = f"{parsed.stream.value}-{parsed.seq + delay:09d}"
    return out


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
