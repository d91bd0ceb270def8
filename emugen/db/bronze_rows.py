"""A batch's bronze rows read back in row order, a chunk at a time, never the batch whole."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from emugen.db.models import BronzeRecord


def bronze_parts(
    session: Session,
    batch_id: str,
    chunk: int,
    page: int,
    before_page: Callable[[], None] | None = None,
) -> Iterator[Sequence[Any]]:
    """The batch's (row_no, payload) tuples in row order, `chunk` at a time (silver's read).

    Core, not ORM: rows are tuples, not entities. SQLite's cursor fetches as it goes; psycopg
    fetches a result whole (~0.5 GB for a million rows), so on PostgreSQL the rows come in
    keyset pages of `page` rows, each after `before_page` (silver ends its COPY there: no
    other statement can run on the connection while it is open)."""
    bronze = BronzeRecord.__table__.c
    query = select(bronze.row_no, bronze.payload).order_by(bronze.row_no)
    if session.get_bind().dialect.name != "postgresql":
        yield from (
            session.connection().execute(query.where(bronze.batch_id == batch_id)).partitions(chunk)
        )
        return
    yield from keyset_pages(session, batch_id, page, before_page, chunk=chunk)


def keyset_pages(
    conn: Connection | Session,
    batch_id: str,
    page: int,
    before_page: Callable[[], None] | None = None,
    *,
    chunk: int | None = None,
) -> Iterator[Sequence[Any]]:
    """The batch's (row_no, payload) rows, `page` at a time, each page a fresh query from the
    last row_no read: no cursor stays open between pages and no result is ever the batch whole
    (silver's PostgreSQL read, and the lander's read on every backend).

    With `chunk`, a page is handed out `chunk` rows at a time. psycopg holds the fetched page
    in C, compactly; its rows as Python tuples take ~3x that, so they are made a chunk at a
    time (a 100,000-row page made whole peaked silver 30-45 MB higher at 100,000 events)."""
    bronze = BronzeRecord.__table__.c
    after = -1
    while True:
        if before_page is not None:
            before_page()
        result = conn.execute(
            select(bronze.row_no, bronze.payload)
            .where(bronze.batch_id == batch_id, bronze.row_no > after)
            .order_by(bronze.row_no)
            .limit(page)
        )
        read = 0
        for rows in [result.all()] if chunk is None else result.partitions(chunk):
            if rows:
                read, after = read + len(rows), rows[-1][0]
                yield rows
        if read < page:
            return
