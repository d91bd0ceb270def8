"""A consumer's output (what it kept, what it rejected) as DuckDB views keyed for matching."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import duckdb
import pyarrow as pa
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import ArgumentError

from emugen.contract import COMPANY_RULES, EVENT_RULES
from emugen.errors import GradeInputError, GradeInputMissing
from emugen.grade.paths import expand_paths

READERS = {
    ".parquet": "read_parquet({files}, union_by_name=true)",
    ".jsonl": "read_json({files}, format='newline_delimited', union_by_name=true)",
    ".ndjson": "read_json({files}, format='newline_delimited', union_by_name=true)",
    ".json": "read_json({files}, format='auto', union_by_name=true)",
    ".csv": "read_csv({files}, union_by_name=true, header=true)",
}
FILE_COLUMNS = ("source_file", "file_name", "filename", "file_path", "_file")
LINE_COLUMNS = ("line", "line_no", "line_number", "_line")
RAW_COLUMNS = ("payload", "raw", "value", "_corrupt_record", "record")
ID_COLUMNS = {"events": "event_id", "companies": "company_id"}
STREAM_OF = {key: stream for stream, key in ID_COLUMNS.items()}
# fields only an event has: a company has company_id and none of these
EVENT_ONLY = tuple(r.name for r in EVENT_RULES if r.name not in {c.name for c in COMPANY_RULES})
# a landing-zone file name is its batch id plus the format's suffix
BATCH_FROM_FILE = (
    "regexp_replace(regexp_extract({col}::VARCHAR, '[^/]+$'), '\\.(jsonl|json|parquet)$', '')"
)


@dataclass(frozen=True)
class Source:
    """Where one side of the consumer's output is: a path or glob, or a SQLAlchemy URL + query."""

    label: str  # "kept" or "rejected": names the input in every message
    location: str
    query: str | None = None

    @property
    def is_sql(self) -> bool:
        return "://" in self.location and not self.location.startswith("file://")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def expand(location: str, label: str) -> list[str]:
    """The files a path, folder or glob names, each once by real path (symlinked folders are not
    followed); an error naming the input when there are none."""
    files = expand_paths(location, set(READERS))
    if not files:
        raise GradeInputMissing(
            f"{label} input {location}: no such file (or the glob matches "
            "nothing); give a Parquet, JSON Lines or CSV path or glob"
        )
    unreadable = [f for f in files if not os.access(f, os.R_OK)]
    if unreadable:
        raise GradeInputError(
            f"{label} input {unreadable[0]}: permission denied; make it "
            "readable or copy it somewhere readable"
        )
    suffixes = {Path(f).suffix for f in files}
    unknown = suffixes - READERS.keys()
    if unknown or len(suffixes) > 1:
        raise GradeInputError(
            f"{label} input {location}: files end in {', '.join(sorted(suffixes))}; expected "
            f"one of {', '.join(READERS)} (one format per input)"
        )
    return files


def reader_sql(con: duckdb.DuckDBPyConnection, location: str, label: str) -> str:
    """A DuckDB table function reading every file of `location`, checked to be readable."""
    files = expand(location, label)
    sql = READERS[Path(files[0]).suffix].format(
        files="[" + ", ".join(_literal(f) for f in files) + "]"
    )
    try:
        con.execute(f"SELECT * FROM {sql} LIMIT 0")
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        gone = [f for f in files if not os.path.exists(f)]
        if gone:
            raise GradeInputMissing(
                f"{label} input {gone[0]}: vanished while it was read; "
                "grade again once it is written"
            ) from None
        raise GradeInputError(
            f"{label} input {location}: cannot read it as "
            f"{Path(files[0]).suffix[1:]}: {first}; check that the file is "
            "complete and its name ends in its real format"
        ) from None
    return sql


def _read_only(source: Source) -> Engine:
    """An engine that only reads: a consumer's SQLite file is opened read-only, so grading
    neither creates it nor switches its journal mode (the store's engine does both)."""
    from emugen.db.session import make_engine

    try:
        url = make_url(source.location)
    except (ArgumentError, ValueError):  # a port that is not a number is a ValueError
        raise GradeInputError(
            f"{source.label} input {source.location} is not a SQLAlchemy URL; "
            "use e.g. sqlite:///out/consumer.db or postgresql://user@host/db"
        ) from None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return make_engine(source.location)
    target = "file:" + quote(os.path.abspath(url.database or "")) + "?mode=ro"
    return create_engine(url.set(database=target, query={"uri": "true"}))


def sql_table(source: Source, chunk: int = 50_000) -> pa.Table:
    """The rows a SQL query returns from a SQLAlchemy URL, as one Arrow table."""
    if not source.query:
        raise GradeInputError(
            f"{source.label} input {source.location} is a database URL; "
            f"give the query too (--{source.label}-query 'SELECT ...')"
        )
    engine = _read_only(source)
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(text(source.query))
            names = list(result.keys())
            columns: list[list] = [[] for _ in names]
            for part in result.partitions(chunk):
                for i, values in enumerate(zip(*part, strict=True)):
                    columns[i].extend(values)
    except Exception as exc:  # noqa: BLE001 - any driver error is the user's URL or query
        first = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0]
        raise GradeInputError(
            f"{source.label} input {source.location}: the query failed: "
            f"{first}; check the URL and run the query there by hand "
            "until it answers"
        ) from None
    finally:
        engine.dispose()
    return pa.table({n: _column(source, n, c) for n, c in zip(names, columns, strict=True)})


def _column(source: Source, name: str, values: list) -> pa.Array:
    """One query column as Arrow; a value unlike the rows before it (SQLite keeps any type in
    any column) is one line naming its row and column."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        kind = type(next((v for v in values if v is not None), None))
        row = next(
            (i for i, v in enumerate(values) if v is not None and not isinstance(v, kind)), None
        )
        what = (
            f"row {row + 1} of the query, column {name}: {values[row]!r} is not "
            f"{kind.__name__} like the rows before it"
            if row is not None
            else f"column {name}: {str(exc).splitlines()[0]}"
        )
        raise GradeInputError(
            f"{source.label} input {source.location}: {what}; cast it in "
            f"the query (CAST({name} AS ...)) or drop that row"
        ) from None


def register(con: duckdb.DuckDBPyConnection, source: Source) -> str:
    """Make `source` readable as the DuckDB view named after its label; its column names."""
    raw = f"{source.label}_raw"
    if source.is_sql:
        con.register(f"{raw}_arrow", sql_table(source))
        con.execute(f"CREATE OR REPLACE VIEW {raw} AS SELECT * FROM {raw}_arrow")
    else:
        con.execute(
            f"CREATE OR REPLACE VIEW {raw} AS SELECT * FROM "
            f"{reader_sql(con, source.location, source.label)}"
        )
    return raw


def columns_of(con: duckdb.DuckDBPyConnection, view: str) -> dict[str, str]:
    """Lower-cased column name -> its quoted name as DuckDB knows it."""
    names = [d[0] for d in con.execute(f"SELECT * FROM {view} LIMIT 0").description]
    return {n.lower(): '"' + n.replace('"', '""') + '"' for n in names}


def lineage_exprs(cols: dict[str, str]) -> tuple[str, str] | None:
    """SQL for (batch_id, row_no) from the columns a consumer carried, or None."""
    if "batch_id" in cols and "row_no" in cols:
        return f"{cols['batch_id']}::VARCHAR", f"{cols['row_no']}::BIGINT"
    file_col = next((cols[c] for c in FILE_COLUMNS if c in cols), None)
    if file_col is None and "_metadata" in cols:
        file_col = f"{cols['_metadata']}.file_name"  # Spark's file-source metadata column
    line_col = next((cols[c] for c in LINE_COLUMNS if c in cols), None)
    if file_col and line_col:
        # JSON Lines line i (1-based) is bronze row_no i-1
        return BATCH_FROM_FILE.format(col=file_col), f"{line_col}::BIGINT - 1"
    return None


def _routed(cols: dict[str, str]) -> tuple[str, str]:
    """Both streams in one input (a glob over both silvers): a row is an event when it has any
    event-only field (an event whose id a defect removed still has its driver), else a company
    by its own `company_id`."""
    event_only = [cols[c] for c in EVENT_ONLY if c in cols]
    is_event = " OR ".join(f"{c} IS NOT NULL" for c in event_only)
    return (
        f"CASE WHEN {is_event} THEN {cols['event_id']}::VARCHAR "
        f"ELSE {cols['company_id']}::VARCHAR END",
        f"CASE WHEN {is_event} THEN 'events' "
        f"WHEN {cols['company_id']} IS NOT NULL THEN 'companies' END",
    )


def id_expr(cols: dict[str, str], stream: str | None) -> tuple[str, str] | None:
    """SQL for the record's natural id and its stream, from a key column or raw JSON, or None."""
    if stream is None and "event_id" in cols and "company_id" in cols:
        return _routed(cols)
    keys = [ID_COLUMNS[stream]] if stream else ["event_id", "company_id"]
    for key in keys:
        if key in cols:
            return f"{cols[key]}::VARCHAR", _literal(stream or STREAM_OF[key])
    raw = next((cols[c] for c in RAW_COLUMNS if c in cols), None)
    if raw is None:
        return None
    if stream:
        path = f"'$.{ID_COLUMNS[stream]}'"
        return (
            f"CASE WHEN json_valid({raw}) THEN json_extract_string({raw}, {path}) END",
            _literal(stream),
        )
    # an event carries company_id too: it is an event when it has any event-only field
    is_event = (
        f"(json_exists({raw}, '$.event_id') OR json_exists({raw}, '$.event_type') "
        f"OR json_exists({raw}, '$.driver_id'))"
    )
    return (
        f"CASE WHEN NOT json_valid({raw}) THEN NULL WHEN {is_event} "
        f"THEN json_extract_string({raw}, '$.event_id') "
        f"ELSE json_extract_string({raw}, '$.company_id') END",
        f"CASE WHEN NOT json_valid({raw}) THEN NULL WHEN {is_event} THEN 'events' "
        f"ELSE 'companies' END",
    )


def normalise(
    con: duckdb.DuckDBPyConnection, source: Source, match: str, stream: str | None
) -> str:
    """The view `<label>` with batch_id, row_no (lineage) or natural_id (id) and `ord`."""
    raw = register(con, source)
    cols = columns_of(con, raw)
    where = source.location + (f" ({source.query})" if source.query else "")
    if match == "lineage":
        exprs = lineage_exprs(cols)
        if exprs is None:
            raise GradeInputError(
                f"{source.label} input {where}: no lineage columns (have "
                f"{', '.join(sorted(cols)) or 'none'}); carry batch_id and row_no, or a file "
                f"name ({'/'.join(FILE_COLUMNS)}) and line ({'/'.join(LINE_COLUMNS)}), or grade "
                "with --match id"
            )
        ids = id_expr(cols, stream)  # read only by the check that the truth is this run's
        keys = (
            f"{exprs[0]} AS batch_id, {exprs[1]} AS row_no, "
            f"{ids[0] if ids else 'NULL::VARCHAR'} AS natural_id"
        )
    else:
        if stream == "companies" and "event_id" in cols:
            raise GradeInputError(
                f"{source.label} input {where}: has event_id, so it holds events, but "
                "--stream companies reads every row as a company; drop --stream (rows are "
                "then routed by their own id column) or give the companies alone"
            )
        expr = id_expr(cols, stream)
        if expr is None:
            raise GradeInputError(
                f"{source.label} input {where}: no ids (have "
                f"{', '.join(sorted(cols)) or 'none'}); carry event_id / company_id, a raw JSON "
                f"column ({'/'.join(RAW_COLUMNS)}), or batch_id and row_no"
            )
        keys = f"{expr[0]} AS natural_id, {expr[1]} AS stream"
    # a view: matching reads it once; id mode numbers occurrences in file order (`ord`)
    ordinal = ", row_number() OVER () AS ord" if match == "id" else ""
    con.execute(f"CREATE OR REPLACE VIEW {source.label} AS SELECT {keys}{ordinal} FROM {raw}")
    return source.label


def detect_match(con: duckdb.DuckDBPyConnection, sources: list[Source]) -> str:
    """`lineage` when every input carries (batch_id, row_no) or file + line, else `id`."""
    for source in sources:
        if lineage_exprs(columns_of(con, register(con, source))) is None:
            return "id"
    return "lineage"
