"""A stage's new rows on PostgreSQL through one COPY held open across its chunks.

psycopg is imported where it runs (only on a PostgreSQL engine): see db/copy.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.orm import Session

from emugen.db.bulk import converted
from emugen.db.copy import column_types, copy_into, copy_rows
from emugen.db.seen import SeenKeys

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")
_HELD_BACK = 10_000  # rows that wait for the exact path before it runs (bounds memory)


class StreamLoad:
    """Rows for one table and their quarantine, loaded as a stage produces them.

    Rows whose key the stage surely has not loaded yet (db/seen.py) go into one COPY that
    stays open from chunk to chunk: the server parses and indexes a chunk while the client
    refines the next. A COPY per chunk made each side wait for the other, which on two
    cores cost silver ~0.3 s of 1.5 s on the 100,000-event batch, with a key lookup per
    chunk. The rest — repeats, the bitmap's false alarms, and the quarantine rows (loaded
    in the exact way, as they were) — are held back and go through copy_rows' key lookup at
    `flush()`, which must run before any other statement on the connection, and at the end.
    A key held outside the stage makes the COPY fail: see `fast_or_exact`.
    """

    def __init__(
        self,
        session: Session,
        table: Table,
        columns: Sequence[str],
        quarantine: Table,
        quarantine_columns: Sequence[str],
    ) -> None:
        import psycopg

        self._connection = session.connection()
        raw = self._connection.connection.driver_connection
        assert isinstance(raw, psycopg.Connection), "the PostgreSQL engine runs on psycopg 3"
        self._raw = raw
        self._table, self._columns = table, columns
        self._quarantine, self._quarantine_columns = quarantine, quarantine_columns
        (self._key,) = [list(columns).index(c.name) for c in table.primary_key.columns]
        self._seen = SeenKeys()
        self._open: ExitStack | None = None
        self._copy: psycopg.Copy | None = None
        self._later: list[tuple[Any, ...]] = []
        self._later_quarantine: list[tuple[Any, ...]] = []

    def add(self, rows: Sequence[tuple[Any, ...]], rejected: Sequence[tuple[Any, ...]]) -> None:
        """One chunk's valid rows (in row order) and quarantine rows."""
        rows = converted(self._table, self._columns, rows, self._connection.dialect)
        new = self._seen.first_seen([row[self._key] for row in rows])
        self._later.extend(row for row, n in zip(rows, new, strict=True) if not n)
        self._later_quarantine.extend(rejected)
        self._write([row for row, n in zip(rows, new, strict=True) if n])
        if len(self._later) + len(self._later_quarantine) >= _HELD_BACK:
            self.flush()

    def flush(self) -> None:
        """End the COPY (waiting for the server) and load what was held back."""
        self._end()
        if self._later:
            copy_rows(self._connection, self._table, self._columns, self._later, skip_existing=True)
        if self._later_quarantine:
            quarantine = converted(
                self._quarantine,
                self._quarantine_columns,
                self._later_quarantine,
                self._connection.dialect,
            )
            copy_rows(
                self._connection,
                self._quarantine,
                self._quarantine_columns,
                quarantine,
                skip_existing=True,
            )
        self._later, self._later_quarantine = [], []

    def _write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self._copy is None:
            self._open = ExitStack()
            types = column_types(self._connection, self._raw, self._table)
            self._copy = self._open.enter_context(
                copy_into(self._raw, self._table.name, self._columns, types)
            )
        try:
            for row in rows:
                self._copy.write_row(row)
        except BaseException as error:
            self._abandon(error)
            raise

    def _end(self) -> None:
        opened, self._open, self._copy = self._open, None, None
        if opened is not None:
            opened.close()  # raises what the server found (a held key: UniqueViolation)

    def _abandon(self, error: BaseException) -> None:
        opened, self._open, self._copy = self._open, None, None
        if opened is not None:
            opened.__exit__(type(error), error, error.__traceback__)


def fast_or_exact(session: Session, fast: Callable[[], T], exact: Callable[[], T]) -> T:
    """`fast()` (a StreamLoad's run); if a key it believed new was held after all (a
    redelivered or replayed batch, a concurrent one), undo it and run `exact()` instead."""
    import psycopg

    raw = session.connection().connection.driver_connection
    assert isinstance(raw, psycopg.Connection), "the PostgreSQL engine runs on psycopg 3"
    raw.execute("SAVEPOINT emugen_stream")
    try:
        result = fast()
    except psycopg.errors.UniqueViolation:
        raw.execute("ROLLBACK TO SAVEPOINT emugen_stream")
        result = exact()
    raw.execute("RELEASE SAVEPOINT emugen_stream")
    return result
