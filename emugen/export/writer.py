"""Writing an export in chunks: rows stream from the store to the file, never all in memory."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sqlalchemy import Engine, func, select

from emugen.export.tables import Export

CHUNK = 50_000
Progress = Callable[[int], None]


def count_rows(engine: Engine, export: Export) -> int:
    with engine.connect() as conn:
        return conn.scalar(
            select(func.count()).select_from(export.query.order_by(None).subquery())) or 0


def chunks(engine: Engine, export: Export, chunk: int = CHUNK) -> Iterator[Sequence[Any]]:
    """The query's rows, `chunk` at a time, from a server-side cursor where the driver has one."""
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=chunk).execute(export.query)
        yield from result.partitions(chunk)


def record_batch(rows: Sequence[Any], schema: pa.Schema) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    return pa.RecordBatch.from_arrays(
        [pa.array(list(c), type=f.type) for c, f in zip(columns, schema, strict=True)],
        schema=schema)


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A hidden temporary name beside `out`, renamed over it only when writing succeeded."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


class Sink:
    """One open output file of a format; `write` takes Arrow batches or raw store rows."""

    def __init__(self, path: Path, fmt: str, schema: pa.Schema):
        self.fmt, self.schema, self.names = fmt, schema, schema.names
        if fmt == "parquet":
            self.writer: Any = pq.ParquetWriter(path, schema)
        elif fmt == "csv":
            self.writer = pa_csv.CSVWriter(path, schema)
        else:
            self.writer = path.open("wb")

    def write(self, batch: pa.RecordBatch) -> None:
        if self.fmt == "jsonl":
            names = self.names
            self.writer.write(b"".join(
                orjson.dumps(dict(zip(names, row, strict=True))) + b"\n"
                for row in zip(*(c.to_pylist() for c in batch.columns), strict=True)))
        else:
            self.writer.write_batch(batch)

    def close(self) -> None:
        self.writer.close()


def write_batches(batches: Iterator[pa.RecordBatch], schema: pa.Schema, fmt: str, out: Path,
                  progress: Progress | None = None) -> int:
    """Write every batch to `out` (atomically); the number of rows written."""
    written = 0
    with staged(out) as tmp:
        sink = Sink(tmp, fmt, schema)
        try:
            for batch in batches:
                sink.write(batch)
                written += batch.num_rows
                if progress:
                    progress(batch.num_rows)
        finally:
            sink.close()
    return written


def export_table(engine: Engine, export: Export, fmt: str, out: Path,
                 progress: Progress | None = None) -> int:
    """A layer of the store to `out`, chunk by chunk."""
    batches = (record_batch(rows, export.schema) for rows in chunks(engine, export))
    return write_batches(batches, export.schema, fmt, out, progress)


def export_truth(engine: Engine, export: Export, fmt: str, out: Path,
                 progress: Progress | None = None) -> int:
    """The truth to `out`, with each record's occurrence number (DuckDB spills, not Python)."""
    import duckdb

    from emugen.grade.truth import OCCURRENCE, truth_batch

    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.with_name(f".{out.name}.stage.parquet")
    try:
        written = 0
        sink = Sink(stage, "parquet", export.schema)
        try:
            for rows in chunks(engine, export):
                sink.write(truth_batch(rows))
                written += len(rows)
                if progress:
                    progress(len(rows))
        finally:
            sink.close()
        con = duckdb.connect()
        try:
            # occurrence numbers need every record of an id: DuckDB sorts out of core, in a
            # fixed budget, so the export's memory does not grow with the store
            con.execute("SET memory_limit = '160MB'")
            con.execute("SET threads = 1")
            con.execute("SET enable_progress_bar = false")
            con.execute(f"SET temp_directory = {_literal(str(out.parent / '.duckdb-tmp'))}")
            options = {"parquet": "FORMAT parquet", "csv": "FORMAT csv, HEADER true",
                       "jsonl": "FORMAT json"}[fmt]
            with staged(out) as tmp:
                con.execute(
                    f"COPY (SELECT *, {OCCURRENCE} AS occurrence FROM read_parquet("
                    f"{_literal(str(stage))}) ORDER BY batch_id, row_no) TO "
                    f"{_literal(str(tmp))} ({options})")
        finally:
            con.close()
    finally:
        stage.unlink(missing_ok=True)
    return written


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
