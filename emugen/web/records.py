"""A batch's records as the batch page lists them: bronze row, truth, where it went, verdict."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select, union
from sqlalchemy.orm import Session

from emugen.db.ledger import ArrivalEntry
from emugen.db.models import (
    BatchRow,
    BronzeRecord,
    InjectedDefect,
    Quarantine,
    SilverCompany,
    SilverEvent,
)
from emugen.errors import PageOutOfRange
from emugen.pipeline.reconcile import REFINED, verdict

MAX_SIZE = 500  # rows per page: a page stays one short query per table
MAX_PAGE = 1_000_000  # 100,000-event batches at size 1 fit; anything past is a typo


def _problem_rows(batch_id: str) -> Any:
    """Row numbers that are not plainly clean: injected (the truth) or quarantined (silver)."""
    return union(
        select(InjectedDefect.row_no).where(InjectedDefect.batch_id == batch_id),
        select(Quarantine.row_no).where(Quarantine.batch_id == batch_id),
    ).subquery()


def _rows_of_page(
    session: Session, batch: BatchRow, page: int, size: int, problems_only: bool
) -> tuple[int, list[int] | range]:
    """(rows in the listing, the row numbers on `page`). Bronze row numbers run 0..n-1
    (replay relies on it too), so a page of the full listing is a range, found by the
    primary key however deep it lies."""
    start = (page - 1) * size
    if not problems_only:
        total = batch.record_count
        return total, range(start, min(start + size, total))
    problems = _problem_rows(batch.batch_id)
    total = session.scalar(select(func.count()).select_from(problems)) or 0
    row_nos = list(
        session.scalars(
            select(problems.c.row_no).order_by(problems.c.row_no).limit(size).offset(start)
        )
    )
    return total, row_nos


def _within(column: Any, row_nos: list[int] | range) -> ColumnElement[bool]:
    if isinstance(row_nos, range):
        return column.between(row_nos.start, row_nos.stop - 1)
    return column.in_(row_nos)


def _truth(row: InjectedDefect | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "defect": row.defect,
        "field": row.field,
        "original": row.original,
        "injected": row.injected,
        "expected_reason": row.expected_reason,
    }


def _went(silver_id: str | None, quarantined: Quarantine | None) -> dict[str, Any]:
    if quarantined is not None:
        return {
            "to": "quarantine",
            "reason": quarantined.reason,
            "field": quarantined.field,
            "detail": quarantined.detail,
        }
    if silver_id is not None:
        return {"to": "silver", "id": silver_id}
    return {"to": None}


def _kept(session: Session, batch: BatchRow, row_nos: list[int] | range) -> dict[int, str]:
    """Row number -> the silver row's natural id, for the page's rows that silver kept."""
    if batch.stream == "events":
        query = select(SilverEvent.row_no, SilverEvent.event_id).where(
            SilverEvent.batch_id == batch.batch_id, _within(SilverEvent.row_no, row_nos)
        )
    else:
        query = select(SilverCompany.row_no, SilverCompany.company_id).where(
            SilverCompany.batch_id == batch.batch_id, _within(SilverCompany.row_no, row_nos)
        )
    return {row_no: key for row_no, key in session.execute(query)}


def _arrivals(
    session: Session, batch_id: str, row_nos: list[int] | range
) -> dict[int, dict[str, Any]]:
    """Row number -> its arrival mark, for the page's late and redelivered rows (the ledger):
    how late and which window it belongs to, or the batch and row it is a copy of."""
    marks = {}
    for a in session.scalars(
        select(ArrivalEntry).where(
            ArrivalEntry.batch_id == batch_id,
            ArrivalEntry.condition.in_(("late", "redelivered")),
            _within(ArrivalEntry.row_no, row_nos),
        )
    ):
        assert a.row_no is not None
        window = a.belongs_to_window
        marks[a.row_no] = {
            "condition": a.condition,
            "lateness_ms": a.lateness_ms,
            "belongs_to_window": None if window is None else window.isoformat(),
            "original_batch_id": a.original_batch_id,
            "original_row_no": a.original_row_no,
        }
    return marks


def records_page(
    session: Session, batch: BatchRow, page: int = 1, size: int = 50, problems_only: bool = False
) -> dict[str, Any]:
    """One page of the batch's bronze rows, each beside its truth, its fate and its verdict
    (a redelivered copy silver dropped is `deduplicated`)."""
    total, row_nos = _rows_of_page(session, batch, page, size, problems_only)
    pages = max(1, -(-total // size))
    if page > pages:
        listing = "rows with a problem" if problems_only else "rows"
        raise PageOutOfRange(
            f"page {page} is past the last page, {pages} ({total:,} "
            f"{listing} at size {size}); ask for page 1 to {pages}"
        )
    bid = batch.batch_id
    bronze = session.execute(
        select(BronzeRecord.row_no, BronzeRecord.payload)
        .where(BronzeRecord.batch_id == bid, _within(BronzeRecord.row_no, row_nos))
        .order_by(BronzeRecord.row_no)
    ).all()
    truth = {
        t.row_no: t
        for t in session.scalars(
            select(InjectedDefect).where(
                InjectedDefect.batch_id == bid, _within(InjectedDefect.row_no, row_nos)
            )
        )
    }
    rejected = {
        q.row_no: q
        for q in session.scalars(
            select(Quarantine).where(
                Quarantine.batch_id == bid, _within(Quarantine.row_no, row_nos)
            )
        )
    }
    kept = _kept(session, batch, row_nos)
    arrivals = _arrivals(session, bid, row_nos)
    refined = batch.status in REFINED
    items = []
    for row_no, payload in bronze:
        t, q = truth.get(row_no), rejected.get(row_no)
        items.append(
            {
                "row_no": row_no,
                "payload": payload,
                "truth": _truth(t),
                "went": _went(kept.get(row_no), q),
                "arrival": arrivals.get(row_no),
                "verdict": verdict(
                    None if t is None else (t.expected_reason, t.field),
                    None if q is None else (q.reason, q.field),
                    refined=refined,
                    kept=row_no in kept,
                    copy=(arrivals.get(row_no) or {}).get("condition") == "redelivered",
                ),
            }
        )
    return {
        "batch_id": bid,
        "status": batch.status,
        "problems": "only" if problems_only else "all",
        "page": page,
        "size": size,
        "pages": pages,
        "total": total,
        "items": items,
    }
