"""The consumer's gold, read and checked: `got_wide(w, key, <metric>...)` in DuckDB and the
view `got(w, key, metric, value)`.

Any of `emugen grade`'s input forms (a Parquet, JSON Lines or CSV file, folder or glob, hive
partitions too, or a SQL query over a database URL, `duckdb:///file.db` included). Columns are
found by `emugen export gold`'s names unless `--columns` maps them. Every check fails with one
line naming the column, file or value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from emugen.errors import GradeInputError
from emugen.grade.answer.policy import KEY_COLUMN, METRICS
from emugen.grade.inputs import READERS, Source, columns_of, expand, sql_table


@dataclass(frozen=True)
class Gold:
    """What was read: which table, its window length, the cells and where they came from."""

    table: str  # company | region
    width_ms: int
    cells: int
    where: str


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def register_gold(con: duckdb.DuckDBPyConnection, source: Source) -> str:
    """The view `gold_raw`; where it came from, for messages."""
    if source.location.startswith("duckdb:"):
        path = source.location.split(":///", 1)[-1] if ":///" in source.location else ""
        if not source.query or not path:
            raise GradeInputError(
                f"gold input {source.location}: give duckdb:///FILE.db and "
                "--gold-query 'SELECT ...'"
            )
        try:
            other = duckdb.connect(path, read_only=True)
            table = other.sql(source.query).to_arrow_table()
            other.close()
        except duckdb.Error as exc:
            raise GradeInputError(
                f"gold input {source.location}: the query failed: {str(exc).splitlines()[0]}"
            ) from None
        con.register("gold_arrow", table)
        con.execute("CREATE OR REPLACE VIEW gold_raw AS SELECT * FROM gold_arrow")
    elif source.is_sql:
        con.register("gold_arrow", sql_table(source))
        con.execute("CREATE OR REPLACE VIEW gold_raw AS SELECT * FROM gold_arrow")
    else:
        files = expand(source.location, "gold")
        hive = any("=" in part for f in files for part in Path(f).parts[:-1])
        reader = READERS[Path(files[0]).suffix].format(
            files="[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
        )
        if hive:
            reader = reader[:-1] + ", hive_partitioning=true)"
        try:
            con.execute(f"CREATE OR REPLACE VIEW gold_raw AS SELECT * FROM {reader}")
            con.execute("SELECT * FROM gold_raw LIMIT 0")
        except duckdb.Error as exc:
            raise GradeInputError(
                f"gold input {source.location}: cannot read it: {str(exc).strip().splitlines()[0]}"
            ) from None
    return source.location + (f" ({source.query})" if source.query else "")


def detect_table(
    cols: dict[str, str], mapping: dict[str, str], stream: str | None, where: str
) -> str:
    """company when the gold has a company_id column, region when a region column."""
    if stream:
        return "region" if stream == "companies" else "company"
    found = [t for t, key in KEY_COLUMN.items() if mapping.get(key, key).lower() in cols]
    if len(found) != 1:
        raise GradeInputError(
            f"gold {where}: {'both a company_id and a region' if found else 'no company_id or '}"
            f"{'' if found else 'region'} column (have {', '.join(sorted(cols))}); map the key "
            "with --columns company_id=YOURS or region=YOURS, or say --stream events "
            "(per company) or --stream companies (per region)"
        )
    return found[0]


def _column(cols: dict[str, str], mapping: dict[str, str], target: str) -> str | None:
    name = mapping.get(target, target).lower()
    return cols.get(name)


def window_ms_sql(
    cols: dict[str, str], mapping: dict[str, str], where: str, con: duckdb.DuckDBPyConnection
) -> str:
    """SQL for each row's window start in epoch milliseconds, from whichever column it has."""
    ms = _column(cols, mapping, "window_start_ms")
    if ms is not None and "window_start" not in mapping:
        return f"try_cast({ms} AS BIGINT)"
    start = _column(cols, mapping, "window_start")
    if start is None:
        name = mapping.get("window_start", "window_start")
        raise GradeInputError(
            f"gold {where}: no column {name}"
            f" (have {', '.join(sorted(cols))}); map it with --columns "
            "window_start=YOURS"
        )
    kind = con.execute(f"SELECT typeof({start}) FROM gold_raw LIMIT 1").fetchall()
    kind_name = kind[0][0] if kind else "VARCHAR"
    if kind_name.startswith(("BIGINT", "INTEGER", "HUGEINT", "UBIGINT")):
        return f"{start}::BIGINT"
    if kind_name.startswith("TIMESTAMP"):
        return f"epoch_ms({start})"
    return f"epoch_ms(try_cast({start}::VARCHAR AS TIMESTAMPTZ))"


def _bad_value(
    con: duckdb.DuckDBPyConnection, raw: str, cast: str, column: str, where: str, what: str
) -> None:
    found = con.execute(
        f"SELECT {raw}::VARCHAR FROM gold_raw WHERE {raw} IS NOT NULL AND ({cast}) IS NULL LIMIT 1"
    ).fetchall()
    if found:
        raise GradeInputError(
            f"gold {where}: column {column} holds {found[0][0]!r}, not "
            f"{what}; map the right column with --columns"
        )


def load_gold(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    mapping: dict[str, str],
    stream: str | None,
    width_ms: int | None,
) -> Gold:
    """`got_wide` and `got` from the consumer's gold, checked; which table it is."""
    where = register_gold(con, source)
    if not con.execute("SELECT count(*) FROM gold_raw").fetchall()[0][0]:
        raise GradeInputError(f"gold {where}: no rows; grade once the pipeline has written gold")
    cols = columns_of(con, "gold_raw")
    table = detect_table(cols, mapping, stream, where)
    key_name = KEY_COLUMN[table]
    key = _column(cols, mapping, key_name)
    if key is None:
        raise GradeInputError(
            f"gold {where}: no column {mapping.get(key_name, key_name)} (have "
            f"{', '.join(sorted(cols))}); map it with --columns {key_name}=YOURS"
        )
    metrics = METRICS[table]
    missing = [mapping.get(m, m) for m in metrics if _column(cols, mapping, m) is None]
    if missing:
        raise GradeInputError(
            f"gold {where}: no column {', '.join(missing)} (have "
            f"{', '.join(sorted(cols))}); map them with --columns "
            f"{metrics[0]}=YOURS,..."
        )
    start = window_ms_sql(cols, mapping, where, con)
    raw_start = (
        _column(cols, mapping, "window_start")
        or _column(cols, mapping, "window_start_ms")
        or "NULL"
    )
    _bad_value(
        con, raw_start, start, mapping.get("window_start", "window_start"), where, "a timestamp"
    )
    for m in metrics:
        column = _column(cols, mapping, m)
        assert column is not None
        _bad_value(
            con, column, f"try_cast({column} AS DOUBLE)", mapping.get(m, m), where, "a number"
        )
    width = check_window(con, cols, mapping, start, width_ms, where)
    # one row per (window, key), a column per metric (a key's rows summed): the comparison
    # joins rows, and only the few cells that need it are read one metric at a time (`got`)
    sums = ", ".join(
        f'sum(try_cast({_column(cols, mapping, m)} AS DOUBLE)) AS "{m}"' for m in metrics
    )
    con.execute(
        f"CREATE OR REPLACE TABLE got_wide AS SELECT {start} AS w, {key}::VARCHAR AS key, "
        f"{sums} FROM gold_raw GROUP BY ALL"
    )
    parts = [f"SELECT w, key, '{m}' AS metric, \"{m}\" AS value FROM got_wide" for m in metrics]
    con.execute("CREATE OR REPLACE VIEW got AS " + " UNION ALL ".join(parts))
    rows = con.execute("SELECT count(*) FROM got_wide").fetchall()[0][0]
    return Gold(table, width, rows * len(metrics), where)


def check_window(
    con: duckdb.DuckDBPyConnection,
    cols: dict[str, str],
    mapping: dict[str, str],
    start: str,
    width_ms: int | None,
    where: str,
) -> int:
    """The window length: `--window`, else the gold's window_seconds, else 60 s; checked."""
    seconds = _column(cols, mapping, "window_seconds")
    if seconds is not None:
        found = [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT try_cast({seconds} AS BIGINT) FROM gold_raw LIMIT 3"
            ).fetchall()
        ]
        if len(found) != 1 or found[0] is None or found[0] <= 0:
            raise GradeInputError(
                f"gold {where}: window_seconds holds {found}; one window length per gold table"
            )
        if width_ms is not None and width_ms != found[0] * 1000:
            raise GradeInputError(
                f"--window {width_ms / 1000:g}s does not match the gold's "
                f"window_seconds {found[0]}; drop --window or fix it"
            )
        width_ms = found[0] * 1000
    width_ms = width_ms or 60_000
    off = con.execute(
        f"SELECT {start} AS w FROM gold_raw WHERE ({start}) % {width_ms} <> 0 LIMIT 1"
    ).fetchall()
    if off:
        raise GradeInputError(
            f"gold {where}: window_start {off[0][0]} ms is not on a "
            f"{width_ms / 1000:g}-second window; give the window the "
            "pipeline uses with --window (e.g. --window 1h)"
        )
    return width_ms
