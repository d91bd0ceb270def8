"""What each export kind selects from the store, and its Arrow schema."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
from sqlalchemy import Boolean, Float, Integer, Select, Table, and_, select
from sqlalchemy.sql.elements import ColumnElement

from emugen.db.columns import UTCDateTime
from emugen.db.ledger import LEDGER_COLUMNS, ArrivalEntry
from emugen.db.models import (
    BatchRow,
    BronzeRecord,
    GoldCompanyWindow,
    GoldRegionWindow,
    Quarantine,
    SilverCompany,
    SilverEvent,
)
from emugen.errors import ExportError
from emugen.export import KINDS, STREAMS

SILVER = {"companies": SilverCompany.__table__, "events": SilverEvent.__table__}
# gold is not per stream: its company windows count events, its region windows companies too
GOLD = {"companies": GoldRegionWindow.__table__, "events": GoldCompanyWindow.__table__}


@dataclass(frozen=True)
class Export:
    """A query and the Arrow schema its rows are written with."""

    query: Select
    schema: pa.Schema


def arrow_type(column: ColumnElement) -> pa.DataType:
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(kind, Boolean):
        return pa.bool_()
    if isinstance(kind, Float):
        return pa.float64()
    if isinstance(kind, Integer):  # BigInteger is an Integer
        return pa.int64()
    return pa.string()


def _schema(columns: Sequence[ColumnElement[Any]]) -> pa.Schema:
    return pa.schema([(c.name, arrow_type(c)) for c in columns])


def _in_time(batch: Table, since: datetime | None, until: datetime | None) -> list:
    where = []
    if since:
        where.append(batch.c.scheduled_at >= since)
    if until:
        where.append(batch.c.scheduled_at < until)
    return where


def _check_interval(since: datetime | None, until: datetime | None) -> None:
    if since and until and since >= until:
        raise ExportError(
            f"--since {since.isoformat()} is not before --until "
            f"{until.isoformat()}; give an interval that is not empty"
        )


def export_for(
    kind: str, stream: str | None, since: datetime | None, until: datetime | None
) -> Export:
    """The query of `kind` (filtered by stream and by the batch's scheduled time)."""
    if kind not in KINDS:
        raise ExportError(f"table {kind!r} is not exportable; use one of {', '.join(KINDS)}")
    if stream is not None and stream not in STREAMS:
        raise ExportError(f"--stream {stream!r} is not a stream; use companies or events")
    _check_interval(since, until)
    batch = BatchRow.__table__
    by_batch = _in_time(batch, since, until)
    if kind == "arrivals":
        return _arrivals(stream, by_batch)
    if kind == "truth":
        from emugen.grade.truth import TRUTH_SCHEMA, truth_query

        return Export(truth_query(stream, since, until), TRUTH_SCHEMA)
    if kind in ("silver", "gold") and stream is None:
        raise ExportError(
            f"{kind} has one table per stream: add --stream companies or --stream events"
        )
    if kind == "gold":
        assert stream is not None  # refused just above
        table = GOLD[stream]
        cols = list(table.c)
        where = []
        if since:
            where.append(table.c.window_start >= since)
        if until:
            where.append(table.c.window_start < until)
        return Export(
            select(*cols).where(*where).order_by(*table.primary_key.columns), _schema(cols)
        )
    if kind == "bronze":
        b = BronzeRecord.__table__
        cols = [b.c.batch_id, batch.c.stream, b.c.row_no, b.c.payload, batch.c.scheduled_at]
        order = (b.c.batch_id, b.c.row_no)
        table = b
    elif kind == "quarantine":
        table = Quarantine.__table__
        cols, order = list(table.c), (table.c.batch_id, table.c.row_no)
    else:
        assert stream is not None  # silver: refused just above
        table = SILVER[stream]
        cols, order = list(table.c), (table.c.batch_id, table.c.row_no)
    where = list(by_batch)
    if stream and kind != "silver":
        where.append(batch.c.stream == stream)
    query = (
        select(*cols)
        .select_from(table.join(batch, and_(batch.c.batch_id == table.c.batch_id)))
        .where(*where)
        .order_by(*order)
    )
    return Export(query, _schema(cols))


def _arrivals(stream: str | None, by_batch: list[Any]) -> Export:
    """The arrival ledger: late and redelivered rows, delayed batches, drift points."""
    ledger, batch = ArrivalEntry.__table__, BatchRow.__table__
    cols = [ledger.c[name] for name in LEDGER_COLUMNS if name != "entry"]
    where = list(by_batch) + ([batch.c.stream == stream] if stream else [])
    query = (
        select(*cols)
        .select_from(ledger.join(batch, batch.c.batch_id == ledger.c.batch_id))
        .where(*where)
        .order_by(ledger.c.batch_id, ledger.c.entry)
    )
    return Export(query, _schema(cols))
