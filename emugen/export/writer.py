"""Writing an export in chunks: rows stream from the store to the file (or stdout), never all
in memory."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sqlalchemy import Engine, func, select

from emugen.export.tables import Export
from emugen.files.target import Target
from emugen.files.write import scratch, staged, to_stdout

CHUNK = 50_000
Progress = Callable[[int], None]


def count_rows(engine: Engine, export: Export) -> int:
    with engine.connect() as conn:
        return (
            conn.scalar(select(func.count()).select_from(export.query.order_by(None).subquery()))
            or 0
        )


def chunks(engine: Engine, export: Export, chunk: int = CHUNK) -> Iterator[Sequence[Any]]:
    """The query's rows, `chunk` at a time, from a server-side cursor where the driver has one."""
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=chunk).execute(export.query)
        yield from result.partitions(chunk)


def record_batch(rows: Sequence[Any], schema: pa.Schema) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    return pa.RecordBatch.from_arrays(
        [pa.array(list(c), type=f.type) for c, f in zip(columns, schema, strict=True)],
        schema=schema,
    )


class Sink:
    """One open output of a format (a file, or stdout's bytes); `write` takes Arrow batches."""

    def __init__(self, out: Path | BinaryIO, fmt: str, schema: pa.Schema):
        self.fmt, self.schema, self.names = fmt, schema, schema.names
        self.owned = isinstance(out, Path)  # stdout is flushed, never closed
        if fmt == "parquet":
            self.writer: Any = pq.ParquetWriter(
                out if isinstance(out, Path) else _Tell(out), schema
            )
        elif fmt == "csv":
            self.writer = pa_csv.CSVWriter(out, schema)
        else:
            self.writer = out.open("wb") if isinstance(out, Path) else out

    def write(self, batch: pa.RecordBatch) -> None:
        if self.fmt == "jsonl":
            names = self.names
            self.writer.write(
                b"".join(
                    orjson.dumps(dict(zip(names, row, strict=True))) + b"\n"
                    for row in zip(*(c.to_pylist() for c in batch.columns), strict=True)
                )
            )
        else:
            self.writer.write_batch(batch)

    def close(self) -> None:
        if self.owned or self.fmt != "jsonl":
            self.writer.close()


class _Tell:
    """A write-only stream that counts its bytes: Parquet asks for its position, which a pipe
    cannot tell."""

    def __init__(self, out: BinaryIO):
        self.out, self.at, self.closed = out, 0, False

    def write(self, data: bytes) -> int:
        self.at += self.out.write(data) or 0
        return len(data)

    def tell(self) -> int:
        return self.at

    def flush(self) -> None:
        self.out.flush()

    def close(self) -> None:
        self.out.flush()
        self.closed = True


def _write_all(sink: Sink, batches: Iterator[pa.RecordBatch], progress: Progress | None) -> int:
    written = 0
    try:
        for batch in batches:
            sink.write(batch)
            written += batch.num_rows
            if progress:
                progress(batch.num_rows)
    finally:
        sink.close()
    return written


def write_batches(
    batches: Iterator[pa.RecordBatch],
    schema: pa.Schema,
    fmt: str,
    target: Target,
    progress: Progress | None = None,
) -> int:
    """Write every batch to the target (a file atomically, or stdout as it comes); the number
    of rows written."""
    if target.is_stdout:
        with to_stdout(target) as out:
            return _write_all(Sink(out, fmt, schema), batches, progress)
    with staged(target) as tmp:
        return _write_all(Sink(tmp, fmt, schema), batches, progress)


def export_table(
    engine: Engine, export: Export, fmt: str, target: Target, progress: Progress | None = None
) -> int:
    """A layer of the store to the target, chunk by chunk."""
    batches = (record_batch(rows, export.schema) for rows in chunks(engine, export))
    return write_batches(batches, export.schema, fmt, target, progress)


def export_truth(
    engine: Engine, export: Export, fmt: str, target: Target, progress: Progress | None = None
) -> int:
    """The truth to the target, with each record's occurrence number (DuckDB spills, not
    Python), staged in a private scratch folder beside it."""
    from emugen.grade.truth import truth_batch

    with scratch(target) as folder:
        stage = folder / "stage.parquet"
        batches = (truth_batch(rows) for rows in chunks(engine, export))
        written = _write_all(Sink(stage, "parquet", export.schema), batches, progress)
        if target.is_stdout:
            copy = folder / f"truth.{fmt}"
            _number(stage, copy, fmt, folder, target)
            with to_stdout(target) as out, copy.open("rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)
        else:
            with staged(target) as tmp:
                _number(stage, tmp, fmt, folder, target)
    return written


def _number(stage: Path, out: Path, fmt: str, folder: Path, target: Target) -> None:
    """COPY the staged truth to `out`, numbering each id's occurrences, sorted."""
    import duckdb

    from emugen.grade.truth import OCCURRENCE

    con = duckdb.connect()
    try:
        # occurrence numbers need every record of an id: DuckDB sorts out of core, in a
        # fixed budget, so the export's memory does not grow with the store
        con.execute("SET memory_limit = '160MB'")
        con.execute("SET threads = 1")
        con.execute("SET enable_progress_bar = false")
        con.execute(f"SET temp_directory = {_literal(str(folder / 'duckdb-tmp'))}")
        options = {
            "parquet": "FORMAT parquet",
            "csv": "FORMAT csv, HEADER true",
            "jsonl": "FORMAT json",
        }[fmt]
        con.execute(
            f"COPY (SELECT *, {OCCURRENCE} AS occurrence FROM read_parquet("
            f"{_literal(str(stage))}) ORDER BY batch_id, row_no) TO "
            f"{_literal(str(out))} ({options})"
        )
    except duckdb.IOException as exc:
        raise target.refuse(
            f"cannot write: {str(exc).splitlines()[0]} ({target.shown} is unchanged)"
        ) from None
    finally:
        con.close()


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
