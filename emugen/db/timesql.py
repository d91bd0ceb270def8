"""Time arithmetic in SQL that reads alike on SQLite and PostgreSQL: buckets, durations."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class bucket_of(FunctionElement[int]):  # noqa: N801 - a SQL function, named like one
    """floor(epoch milliseconds of a UTC time column / bucket milliseconds), as an integer.

    Two arguments: the column and the bucket length, an inline integer literal (PostgreSQL
    matches a GROUP BY expression to the select list by its text, and two bind parameters
    never match).
    """

    type = BigInteger()
    inherit_cache = True


class millis_between(FunctionElement[float]):  # noqa: N801 - a SQL function, named like one
    """Milliseconds from the first UTC time column to the second, as a float."""

    type = Float()
    inherit_cache = True


def _args(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(clause, **kw) for clause in element.clauses]


# SQLite stores stamps as ISO-8601 text (db/columns.py), which julianday() reads; its double
# resolves ~50 µs today, far below a millisecond.
@compiles(bucket_of, "sqlite")
def _bucket_sqlite(element: bucket_of, compiler: SQLCompiler, **kw: Any) -> str:
    column, size = _args(element, compiler, **kw)
    # to the whole millisecond first (a stamp on a bucket's edge must not fall a hair short
    # of it), then SQLite's integer division, which is floor after the epoch
    return f"(CAST(round((julianday({column}) - 2440587.5) * 86400000.0) AS INTEGER) / {size})"


@compiles(bucket_of, "postgresql")
def _bucket_postgresql(element: bucket_of, compiler: SQLCompiler, **kw: Any) -> str:
    column, size = _args(element, compiler, **kw)
    # date_part is double precision (EXTRACT is numeric, several times slower); to the whole
    # millisecond first, as on SQLite
    return f"CAST(floor(round(date_part('epoch', {column}) * 1000) / {size}) AS BIGINT)"


@compiles(millis_between, "sqlite")
def _millis_sqlite(element: millis_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = _args(element, compiler, **kw)
    return f"((julianday({end}) - julianday({start})) * 86400000.0)"


@compiles(millis_between, "postgresql")
def _millis_postgresql(element: millis_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = _args(element, compiler, **kw)
    return f"(date_part('epoch', {end} - {start}) * 1000)"
