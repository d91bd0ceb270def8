"""The truth: one row per bronze record (clean or not), read from the store or a truth file."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
from sqlalchemy import Engine, Select, String, and_, case, cast, literal, select

from emugen.db.ledger import ArrivalEntry
from emugen.db.models import BatchRow, BronzeRecord, InjectedDefect
from emugen.errors import GradeInputError
from emugen.vocabulary import Stream

KEY_FIELD = {Stream.companies.value: "company_id", Stream.events.value: "event_id"}
REDELIVERED = "redelivered"  # the truth's name for a redelivered copy, beside the defects

TRUTH_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        ("stream", pa.string()),
        ("row_no", pa.int64()),
        ("natural_id", pa.string()),
        ("defect", pa.string()),
        ("field", pa.string()),
        ("original", pa.string()),
        ("injected", pa.string()),
        ("expected_reason", pa.string()),
        ("payload", pa.string()),
    ]
)
TRUTH_COLUMNS = tuple(TRUTH_SCHEMA.names)
REQUIRED = ("batch_id", "stream", "row_no", "natural_id", "defect")

# Occurrence n of an id is its n-th record in (batch_id, row_no) order: the injected copy of a
# record always lands after its original (generate/quality.py), so a copy is occurrence >= 2.
OCCURRENCE = (
    "CASE WHEN natural_id IS NULL THEN NULL ELSE row_number() OVER "
    "(PARTITION BY stream, natural_id ORDER BY batch_id, row_no) END"
)


def natural_id(stream: str, payload: str) -> str | None:
    """The record's key as its raw text carries it (None when missing, null or unparseable).

    A wrong-typed key (a number, say) is kept as its JSON text, so it still matches a consumer
    that stored the same value as text.
    """
    try:
        record = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    value = record.get(KEY_FIELD[stream])
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def truth_query(
    stream: str | None = None, since: datetime | None = None, until: datetime | None = None
) -> Select[Any]:
    """Every bronze row with its stream and its defect (or nulls), in (batch_id, row_no) order."""
    b, d, batch = BronzeRecord.__table__.c, InjectedDefect.__table__.c, BatchRow.__table__.c
    where = []
    if stream:
        where.append(batch.stream == stream)
    if since:
        where.append(batch.scheduled_at >= since)
    if until:
        where.append(batch.scheduled_at < until)
    # A redelivered copy (the arrival ledger) is valid data, but a pipeline must not count it
    # twice: its truth row says `redelivered`, naming the original; silver's reason for it would
    # be `duplicate`. It is never also a defect (copies are made of clean rows).
    a = ArrivalEntry.__table__.c
    copy = a.condition.is_not(None)
    return (
        select(
            b.batch_id,
            batch.stream,
            b.row_no,
            case((copy, literal(REDELIVERED)), else_=d.defect),
            case((copy, literal(KEY_FIELD[Stream.events.value])), else_=d.field),
            case(
                (copy, a.original_batch_id + literal(" row ") + cast(a.original_row_no, String)),
                else_=d.original,
            ),
            d.injected,
            case((copy, literal("duplicate")), else_=d.expected_reason),
            b.payload,
        )
        .join(BatchRow.__table__, batch.batch_id == b.batch_id)
        .outerjoin(InjectedDefect.__table__, and_(d.batch_id == b.batch_id, d.row_no == b.row_no))
        .outerjoin(
            ArrivalEntry.__table__,
            and_(a.batch_id == b.batch_id, a.row_no == b.row_no, a.condition == REDELIVERED),
        )
        .where(*where)
        .order_by(b.batch_id, b.row_no)
    )


def truth_batches(
    engine: Engine,
    stream: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    chunk: int = 50_000,
) -> Iterator[pa.RecordBatch]:
    """The truth as Arrow batches of `chunk` rows, streamed: memory stays flat however big."""
    with engine.connect() as conn:
        rows = conn.execution_options(stream_results=True, yield_per=chunk).execute(
            truth_query(stream, since, until)
        )
        for part in rows.partitions(chunk):
            yield truth_batch(part)


def truth_batch(rows: Sequence[Any]) -> pa.RecordBatch:
    """One chunk of store rows as an Arrow batch, with each record's natural id parsed."""
    batch_id, stream, row_no, defect, field, original, injected, reason, payload = (
        (list(c) for c in zip(*rows, strict=True)) if rows else ([] for _ in range(9))
    )
    ids = [natural_id(s, p) for s, p in zip(stream, payload, strict=True)]
    columns = [batch_id, stream, row_no, ids, defect, field, original, injected, reason, payload]
    return pa.RecordBatch.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, TRUTH_SCHEMA, strict=True)],
        schema=TRUTH_SCHEMA,
    )


KEYS = ("batch_id", "stream", "row_no", "natural_id", "defect", "occurrence")


def load_truth_from_store(
    con: duckdb.DuckDBPyConnection, engine: Engine, stream: str | None = None
) -> None:
    """Create `truth_detail` (every column) and `truth` (the keys matching needs) from the store."""
    reader = pa.RecordBatchReader.from_batches(TRUTH_SCHEMA, truth_batches(engine, stream))
    con.register("truth_src", reader)
    con.execute(
        f"CREATE OR REPLACE TABLE truth_detail AS SELECT *, {OCCURRENCE} AS occurrence "
        "FROM truth_src"
    )
    con.unregister("truth_src")
    con.execute(f"CREATE OR REPLACE VIEW truth AS SELECT {', '.join(KEYS)} FROM truth_detail")


def load_truth_from_file(
    con: duckdb.DuckDBPyConnection, path: str, stream: str | None = None
) -> None:
    """`truth_detail` and `truth` from an `emugen export truth` file (or a glob of them).

    Matching reads only the key columns, so the file's raw payloads are read again only for
    the few examples shown.
    """
    from emugen.grade.inputs import reader_sql

    reader = reader_sql(con, path, "truth")
    con.execute(f"CREATE OR REPLACE VIEW truth_file AS SELECT * FROM {reader}")
    columns = {d[0].lower() for d in con.execute("SELECT * FROM truth_file LIMIT 0").description}
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise GradeInputError(
            f"truth {path}: no column {', '.join(missing)}; write it with "
            "`emugen export truth --out PATH`"
        )
    typed = ", ".join(
        f"{c}::{'BIGINT' if c == 'row_no' else 'VARCHAR'} AS {c}"
        if c in columns
        else f"NULL::VARCHAR AS {c}"
        for c in TRUTH_COLUMNS
    )
    occurrence = "occurrence::BIGINT" if "occurrence" in columns else OCCURRENCE
    con.execute(
        f"CREATE OR REPLACE VIEW truth_detail AS SELECT {typed}, "
        f"{occurrence} AS occurrence FROM truth_file"
    )
    where = "" if stream is None else f" WHERE stream = '{stream}'"  # a validated choice
    # a view: matching reads the file's key columns once, inside its single join
    con.execute(
        f"CREATE OR REPLACE VIEW truth AS SELECT {', '.join(KEYS)} FROM truth_detail{where}"
    )


def load_truth(
    con: duckdb.DuckDBPyConnection,
    *,
    engine: Engine | None = None,
    path: str | Path | None = None,
    stream: str | None = None,
) -> None:
    """The truth (of one stream, or all) into DuckDB, from a file if `path` is given, else
    from the store."""
    if path is not None:
        load_truth_from_file(con, str(path), stream)
    else:
        assert engine is not None
        load_truth_from_store(con, engine, stream)
