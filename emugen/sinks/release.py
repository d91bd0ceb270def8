"""Release order of delayed batches. A delayed batch's file waits for the tick of the batch its
ledger entry names (`released_after_batch_id`, d batches later) and is then written into its
own interval's partition, as an upstream outage would deliver it: an outside consumer sees it
after the files of the batches in between. Bronze, silver and gold get it on schedule."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, exists, literal, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from emugen.db.ledger import DELAYED_ENTRY, ArrivalEntry
from emugen.db.models import BatchRow, LandedFile


def _waiting(batch_id: ColumnElement[str] | InstrumentedAttribute[str]) -> ColumnElement[bool]:
    """`batch_id` is delayed and the batch it waits for has not been generated yet."""
    later = select(BatchRow.batch_id).where(
        BatchRow.batch_id == ArrivalEntry.released_after_batch_id
    )
    return exists(
        select(ArrivalEntry.batch_id).where(
            ArrivalEntry.batch_id == batch_id, ArrivalEntry.entry == DELAYED_ENTRY, ~later.exists()
        )
    )


def held_back(conn: Connection | Session, batch_id: str) -> bool:
    """Whether the batch's file must wait for a later batch's tick."""
    return bool(conn.scalar(select(_waiting(literal(batch_id)))))


def released_by(conn: Connection | Session, batch_id: str) -> list[str]:
    """The delayed batches that waited for `batch_id` and have no file yet, oldest first."""
    landed = select(LandedFile.batch_id).where(LandedFile.batch_id == ArrivalEntry.batch_id)
    return list(
        conn.scalars(
            select(ArrivalEntry.batch_id)
            .where(
                ArrivalEntry.released_after_batch_id == batch_id,
                ArrivalEntry.entry == DELAYED_ENTRY,
                ~landed.exists(),
            )
            .order_by(ArrivalEntry.batch_id)
        )
    )


def not_held(batch_id: InstrumentedAttribute[str]) -> ColumnElement[bool]:
    """A filter for batch ids whose file may land now (the reaper re-lands only those)."""
    return ~_waiting(batch_id)
