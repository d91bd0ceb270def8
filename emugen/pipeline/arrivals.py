"""The arrival ledger's rows for one batch: a pure function of its spec and its draft.

Bronze writes them in the landing transaction, beside the defect truth; replay regenerates
and compares them; `emugen export arrivals` writes them out. Not a stage: no stage's order.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from emugen.contract import Reason, Rejection
from emugen.db.bulk import bulk_insert
from emugen.db.ledger import DELAYED_ENTRY, DRIFT_ENTRY, LEDGER_COLUMNS, ArrivalEntry
from emugen.db.models import BatchRow
from emugen.generate import BatchSpec, Draft
from emugen.generate.spec import late_horizon_ms
from emugen.vocabulary import EPOCH, WINDOW_SECONDS, Stream

LedgerRow = tuple[Any, ...]  # in LEDGER_COLUMNS order


def batch_id_of(stream: Stream | str, seq: int) -> str:
    """Bronze's batch id (`events-000000042`), spelled here so no stage imports another."""
    return f"{Stream(stream).value}-{seq:09d}"


def _window(spec: BatchSpec, event_ms: int) -> datetime:
    width = WINDOW_SECONDS[spec.mode] * 1000
    return EPOCH + timedelta(milliseconds=event_ms // width * width)


def ledger_rows(batch_id: str, planned: Draft) -> list[LedgerRow]:
    """Every ledger row of a drafted batch, ordered by entry."""
    spec = planned.spec
    arrival = spec.arrival
    if arrival is None:
        return []
    rows: list[LedgerRow] = []
    if arrival.drift is not None and spec.seq == arrival.drift.from_seq:
        rows.append(
            (
                batch_id,
                DRIFT_ENTRY,
                None,
                "drift",
                None,
                None,
                None,
                None,
                None,
                spec.stream.value,
                arrival.drift.from_seq,
                arrival.contract_version,
                arrival.drift.field,
            )
        )
    if planned.delay:
        rows.append(
            (
                batch_id,
                DELAYED_ENTRY,
                None,
                "delayed",
                None,
                None,
                None,
                None,
                batch_id_of(spec.stream, spec.seq + planned.delay),
                None,
                None,
                None,
                None,
            )
        )
    for a in planned.arrivals:
        original = None if a.original_seq is None else batch_id_of(spec.stream, a.original_seq)
        rows.append(
            (
                batch_id,
                a.row_no,
                a.row_no,
                a.condition,
                _window(spec, a.event_ms),
                a.lateness_ms,
                original,
                a.original_row_no,
                None,
                None,
                None,
                None,
                None,
            )
        )
    return rows


def write_ledger(session: Session, batch_id: str, planned: Draft) -> None:
    bulk_insert(session, ArrivalEntry.__table__, LEDGER_COLUMNS, ledger_rows(batch_id, planned))


def recorded_ledger(session: Session, batch_id: str) -> list[LedgerRow]:
    """The stored ledger rows of a batch, in the order `ledger_rows` makes them."""
    columns = [getattr(ArrivalEntry, c) for c in LEDGER_COLUMNS]
    return [
        tuple(r)
        for r in session.execute(
            select(*columns).where(ArrivalEntry.batch_id == batch_id).order_by(ArrivalEntry.entry)
        )
    ]


def source_specs(session: Session, stream: Stream, seq: int, max_age: int) -> tuple[BatchSpec, ...]:
    """The stored specs of the `max_age` batches before `seq`: what redelivered copies copy."""
    if seq <= 1:
        return ()
    texts = session.scalars(
        select(BatchRow.spec).where(
            BatchRow.stream == stream.value,
            BatchRow.seq >= max(1, seq - max_age),
            BatchRow.seq < seq,
        )
    )
    return tuple(BatchSpec.model_validate_json(t) for t in texts)


# -- what silver needs of the arrival conditions (recorded at landing, like planned companies)


def redelivered_rows(session: Session, batch_id: str) -> frozenset[int]:
    """The rows of a batch that are redelivered copies: silver drops them, counted."""
    return frozenset(
        session.scalars(
            select(ArrivalEntry.row_no).where(
                ArrivalEntry.batch_id == batch_id, ArrivalEntry.condition == "redelivered"
            )
        )
    )


def earliest_valid(spec: BatchSpec) -> datetime:
    """The first event time silver accepts: the interval start, less the declared lateness."""
    return spec.interval_start - timedelta(milliseconds=late_horizon_ms(spec))


def drift_field(spec: BatchSpec) -> str | None:
    """The field a batch's contract version adds (version 2), else None."""
    arrival = spec.arrival
    if arrival is None or arrival.drift is None or arrival.contract_version < 2:
        return None
    return arrival.drift.field


def without_drift(item: Any, field: str) -> Any:
    """A record of contract version 2 as version 1 checks it: the optional drift field, a
    number when present, taken out; a drift field of another type is a schema_mismatch."""
    if not isinstance(item, dict) or field not in item:
        return item
    value = item.pop(field)
    if value is None or (type(value) in (int, float)):
        return item
    return Rejection(Reason.schema_mismatch, field, f"{field}: expected a number")


def arrival_counts(session: Session) -> list[tuple[str, str, int]]:
    """(stream, condition, entries) over the ledger: late and redelivered records, delayed
    batches and drift points."""
    return [
        (s, c, n)
        for s, c, n in session.execute(
            select(BatchRow.stream, ArrivalEntry.condition, func.count())
            .join(BatchRow, BatchRow.batch_id == ArrivalEntry.batch_id)
            .group_by(BatchRow.stream, ArrivalEntry.condition)
        )
    ]


def arrival_summary(session: Session) -> dict[str, dict[str, int]]:
    """Per stream with arrival conditions: ledger entries by condition, and the contract
    version its newest batch was generated under (what `emugen status` shows)."""
    summary: dict[str, dict[str, int]] = {}
    for stream, condition, n in arrival_counts(session):
        summary.setdefault(stream, {})[condition] = n
    for stream, counts in summary.items():
        newest = session.scalar(
            select(BatchRow.spec)
            .where(BatchRow.stream == stream)
            .order_by(BatchRow.seq.desc())
            .limit(1)
        )
        arrival = BatchSpec.model_validate_json(newest).arrival if newest else None
        counts["contract_version"] = arrival.contract_version if arrival else 1
    return summary
