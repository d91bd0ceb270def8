"""Where a value that cannot be cast to a whole number is: file, line and column.

Matching casts `row_no` (and a file's line number, and the truth's occurrence) to BIGINT.
When DuckDB's cast fails, or its JSON reader fails to convert a value past the rows it sampled,
its message names neither the input nor (always) the line. Only then is each file read again,
one at a time with every value as text and a row number, to find the first offending row.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from emugen.errors import GradeInputError
from emugen.grade.inputs import LINE_COLUMNS, Source, columns_of, expand

CAST_COLUMNS = ("row_no", "occurrence", *LINE_COLUMNS)
# a text value is bad when it is there and neither an integer nor a float that fits one
BAD = (
    "{v} IS NOT NULL AND coalesce(TRY_CAST({v} AS BIGINT), "
    "TRY_CAST(TRY_CAST({v} AS DOUBLE) AS BIGINT)) IS NULL"
)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _reader(path: str, name: str) -> tuple[str, str, str]:
    """(table function, the column's text expression, what one row is called) for one file."""
    literal = "'" + path.replace("'", "''") + "'"
    suffix = Path(path).suffix
    if suffix in (".jsonl", ".ndjson", ".json"):
        function = "read_ndjson_objects" if suffix != ".json" else "read_json_objects"
        key = "'$." + _quoted(name).replace("'", "''") + "'"
        return (
            f"{function}({literal})",
            f"json_extract_string(json, {key})",
            "line" if suffix != ".json" else "record",
        )
    if suffix == ".csv":  # line 1 is the header: row n is line n + 1
        return f"read_csv({literal}, header=true, all_varchar=true)", _quoted(name), "csv"
    return f"read_parquet({literal})", f"{_quoted(name)}::VARCHAR", "row"


def _first_bad(con: duckdb.DuckDBPyConnection, source_sql: str, value: str) -> tuple | None:
    return con.execute(
        f"SELECT n, v FROM (SELECT row_number() OVER () AS n, {value} AS v FROM {source_sql}) "
        f"WHERE {BAD.format(v='v')} ORDER BY n LIMIT 1"
    ).fetchone()


def _in_files(location: str, label: str, names: list[str]) -> str | None:
    """The first bad value of `names` in the files of `location`, as a message, or None."""
    con = duckdb.connect()  # one thread: row_number() then follows the file's order
    con.execute("SET threads = 1")
    try:
        for path in expand(location, label):
            for name in names:
                reader, value, unit = _reader(path, name)
                found = _first_bad(con, reader, value)
                if found:
                    n, bad = found
                    where = f"line {n + 1}" if unit == "csv" else f"{unit} {n}"
                    return f"{path}: {where}, column {name}: {bad!r}"
    finally:
        con.close()
    return None


def _in_query(con: duckdb.DuckDBPyConnection, source: Source, names: list[str]) -> str | None:
    for name in names:
        found = _first_bad(con, f"{source.label}_raw", f"{_quoted(name)}::VARCHAR")
        if found:
            return f"{source.location}: row {found[0]} of the query, column {name}: {found[1]!r}"
    return None


def bad_value(
    con: duckdb.DuckDBPyConnection,
    sources: list[Source],
    truth_path: str | None,
    error: duckdb.Error,
) -> GradeInputError:
    """One line naming the input, file, line and column of the first value that cannot be cast
    (or, when none is found, DuckDB's own first line, naming the inputs)."""
    sides = [(s, f"{s.label} input", f"{s.label}_raw") for s in sources]
    if truth_path is not None:
        sides.append((Source("truth", truth_path), "truth", "truth_file"))
    for source, name, view in sides:
        try:
            columns = columns_of(con, view)
        except duckdb.Error:
            continue  # not registered yet: the failure came before it was read
        names = [columns[c].strip('"').replace('""', '"') for c in CAST_COLUMNS if c in columns]
        if not names:
            continue
        try:
            found = (
                _in_query(con, source, names)
                if source.is_sql
                else _in_files(source.location, source.label, names)
            )
        except duckdb.Error:
            continue
        if found:
            return GradeInputError(
                f"{name} {found} is not a whole number; fix or drop that row, then grade again"
            )
    first = str(error).strip().splitlines()[0]
    inputs = ", ".join(s.location for s, _, _ in sides)
    return GradeInputError(
        f"cannot read the grading inputs ({inputs}): {first}; fix that "
        "value, or drop its row, then grade again"
    )
