"""PostgreSQL bulk loads with COPY: binary rows into the table, or through a staging table.

psycopg (the `postgres` extra) is imported where a load runs: only a PostgreSQL engine gets
here, and `db.session.engine_for` has already checked that psycopg is installed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table

if TYPE_CHECKING:
    import psycopg

_TYPES = "emugen_copy_types"  # connection.info key: table name -> {column: type oid}
_JSON_OIDS = {114, 3802}  # json, jsonb: binary COPY wants their own wire format, not text


def copy_rows(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    skip_existing: bool = False,
) -> None:
    """Load `rows` (tuples in `columns` order) into `table` in the current transaction.

    `skip_existing` keeps the first of the rows sharing a primary key and leaves out those
    whose key the table already holds, as INSERT … ON CONFLICT DO NOTHING does. Keys the
    table holds are looked up first, so the common case is one plain COPY; a key that a
    concurrent transaction inserts in between makes that COPY fail, and the rows then go
    through a staging table and INSERT … ON CONFLICT DO NOTHING, which waits for it.
    """
    import psycopg

    raw = connection.connection.driver_connection
    assert isinstance(raw, psycopg.Connection), "the PostgreSQL engine runs on psycopg 3"
    types = column_types(connection, raw, table)
    if not skip_existing:
        _copy(raw, table.name, columns, rows, types)
        return
    key = [c.name for c in table.primary_key.columns]
    if not set(key) <= set(columns):  # a generated key cannot clash: only other constraints
        _staged_insert(raw, table, columns, rows, types)
        return
    positions = [columns.index(c) for c in key]
    fresh = _first_of_each_key(rows, positions)
    held = _held_keys(raw, table.name, key, [[row[i] for row in fresh] for i in positions])
    if held:
        fresh = [row for row in fresh if tuple(row[i] for i in positions) not in held]
    if not fresh:
        return
    with raw.cursor() as cursor:
        cursor.execute("SAVEPOINT emugen_copy")
        try:
            _copy(raw, table.name, columns, fresh, types)
        except psycopg.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT emugen_copy")
            _staged_insert(raw, table, columns, fresh, types)
        cursor.execute("RELEASE SAVEPOINT emugen_copy")


def _copy(
    raw: psycopg.Connection,
    name: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    types: dict[str, int],
) -> None:
    with copy_into(raw, name, columns, types) as copy:
        for row in rows:
            copy.write_row(row)


@contextmanager
def copy_into(
    raw: psycopg.Connection, name: str, columns: Sequence[str], types: dict[str, int]
) -> Iterator[psycopg.Copy]:
    """One COPY, ended (waiting for the server) on leaving; binary unless a JSON column takes
    its text (the server parses it, as an INSERT of the same str does)."""
    oids = [types[c] for c in columns]
    binary = not _JSON_OIDS & set(oids)
    sql = f"COPY {name} ({', '.join(columns)}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")
    with raw.cursor() as cursor, cursor.copy(sql) as copy:
        if binary:
            copy.set_types(oids)
        yield copy


def _first_of_each_key(
    rows: Sequence[tuple[Any, ...]], positions: list[int]
) -> list[tuple[Any, ...]]:
    seen: set[Any] = set()
    kept = []
    if len(positions) == 1:
        (p,) = positions
        for row in rows:
            if row[p] not in seen:
                seen.add(row[p])
                kept.append(row)
        return kept
    for row in rows:
        k = tuple(row[i] for i in positions)
        if k not in seen:
            seen.add(k)
            kept.append(row)
    return kept


def _held_keys(
    raw: psycopg.Connection, name: str, key: list[str], values: list[list[Any]]
) -> set[tuple[Any, ...]]:
    """Which of the keys (one list of values per key column) the table already holds.

    One `= ANY(array)` per key column, so the primary key's index answers; with two or more
    columns that asks for a superset (every combination), cut down to the exact keys here.
    """
    # %b: arrays go in binary, a third faster to send than as text for 10k keys
    where = " AND ".join(
        f"{column} = ANY(%b::{'text' if isinstance(v[0], str) else 'bigint'}[])"
        for column, v in zip(key, values, strict=True)
    )
    with raw.cursor() as cursor:
        # never prepared: a generic plan cannot hash the array, and on a table small enough
        # for a sequential scan it compares every row with every key (seconds, not ms)
        cursor.execute(
            f"SELECT {', '.join(key)} FROM {name} WHERE {where}",
            [list(set(v)) if len(key) > 1 else v for v in values],
            prepare=False,
        )
        found = {tuple(row) for row in cursor}
    return found & set(zip(*values, strict=True)) if len(key) > 1 else found


def _staged_insert(
    raw: psycopg.Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    types: dict[str, int],
) -> None:
    """COPY into a temporary table, then INSERT … SELECT in the rows' order … ON CONFLICT DO
    NOTHING: the first of two rows with one key lands, as with row-by-row inserts."""
    stage = f"emugen_stage_{table.name}"
    names = ", ".join(columns)
    with raw.cursor() as cursor:
        # every time: a rolled-back transaction takes the table it created with it. No
        # constraints (CREATE … AS copies none); ON COMMIT DELETE ROWS: nothing outlives a load
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS "
            f"AS SELECT * FROM {table.name} WITH NO DATA"
        )
        _copy(raw, stage, columns, rows, types)
        # The stage is emptied after every load (TRUNCATE gives it a fresh file) and only
        # COPY writes to it, which appends: ctid order is the order the rows were given in.
        cursor.execute(
            f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage} "
            "ORDER BY ctid ON CONFLICT DO NOTHING"
        )
        cursor.execute(f"TRUNCATE {stage}")


def column_types(connection: Connection, raw: psycopg.Connection, table: Table) -> dict[str, int]:
    """The table's column type oids, from the catalog (an upgraded store may differ from the
    models), once per connection."""
    cache = connection.info.setdefault(_TYPES, {})
    if table.name not in cache:
        with raw.cursor() as cursor:
            cursor.execute(
                "SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = "
                "%s::regclass AND attnum > 0 AND NOT attisdropped",
                (table.name,),
            )
            cache[table.name] = dict(cursor.fetchall())
    return cache[table.name]
