"""Bulk inserts at the driver's speed: SQLite via executemany, others via Core insertmanyvalues."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session


def bulk_insert(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    skip_existing: bool = False,
) -> None:
    """Insert `rows` (tuples in `columns` order); `skip_existing` ignores primary-key clashes.

    On SQLite, Core's executemany spends more time building parameter dicts than SQLite spends
    writing (0.66 s vs 0.26 s for 100k bronze rows), so rows go to the driver directly; column
    types still convert values through their own bind processors. PostgreSQL uses Core's
    insertmanyvalues batching, which is already close to the driver's floor there.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name == "sqlite":
        converting = [
            (i, p) for i, name in enumerate(columns)
            if (p := table.c[name].type._cached_bind_processor(dialect)) is not None
        ]
        if len(converting) == 1:  # the common case (one timestamp column): no per-row list
            i, convert = converting[0]
            rows = [(*row[:i], convert(row[i]), *row[i + 1:]) for row in rows]
        elif converting:
            converted = []
            for row in rows:
                values = list(row)
                for i, convert in converting:
                    values[i] = convert(values[i])
                converted.append(tuple(values))
            rows = converted
        verb = "INSERT OR IGNORE" if skip_existing else "INSERT"
        marks = ", ".join("?" for _ in columns)
        sql = f"{verb} INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"
        connection.exec_driver_sql(sql, list(rows))
        return
    statement: Any = (
        postgresql.insert(table).on_conflict_do_nothing()
        if skip_existing and dialect.name == "postgresql"
        else table.insert()
    )
    connection.execute(statement, [dict(zip(columns, row, strict=True)) for row in rows])
