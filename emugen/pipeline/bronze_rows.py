"""A batch's bronze rows read back in row order, a chunk at a time, never the batch whole."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from emugen.db.models import BronzeRecord


def bronze_parts(session: Session, batch_id: str, chunk: int, page: int,
                 before_page: Callable[[], None] | None = None) -> Iterator[Sequence[Any]]:
    """The batch's (row_no, payload) tuples in row order, `chunk` at a time (silver's read).

    Core, not ORM: rows are tuples, not entities. SQLite's cursor fetches as it goes; psycopg
    fetches a result whole (~0.5 GB for a million rows), so on PostgreSQL the rows come in
    keyset pages of `page` rows, each after `before_page` (silver ends its COPY there: no
    other statement can run on the connection while it is open)."""
    bronze = BronzeRecord.__table__.c
    query = select(bronze.row_no, bronze.payload).order_by(bronze.row_no)
    if session.get_bind().dialect.name != "postgresql":
        yield from session.connection().execute(
            query.where(bronze.batch_id == batch_id)).partitions(chunk)
        return
    for rows in keyset_pages(session, batch_id, page, before_page):
        for first in range(0, len(rows), chunk):
            yield rows[first:first + chunk]


def keyset_pages(conn: Connection | Session, batch_id: str, page: int,
                 before_page: Callable[[], None] | None = None) -> Iterator[Sequence[Any]]:
    """The batch's (row_no, payload) rows, `page` at a time, each page a fresh query from the
    last row_no read: no cursor stays open between pages and no result is ever the batch whole
    (silver's PostgreSQL read, and the lander's read on every backend)."""
    bronze = BronzeRecord.__table__.c
    after = -1
    while True:
        if before_page is not None:
            before_page()
        rows = conn.execute(
            select(bronze.row_no, bronze.payload)
            .where(bronze.batch_id == batch_id, bronze.row_no > after)
            .order_by(bronze.row_no).limit(page)).all()
        if rows:
            yield rows
        if len(rows) < page:
            return
        after = rows[-1][0]
