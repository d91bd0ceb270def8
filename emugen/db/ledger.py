"""The arrival ledger, out of band like the defect truth: what arrived late, twice, delayed or
in a new schema, and where it really belongs. It never lands beside the data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from emugen.db.columns import UTCDateTime
from emugen.db.models import Base

# `entry` of the rows that describe a whole batch rather than one of its records
DELAYED_ENTRY, DRIFT_ENTRY = -1, -2


class ArrivalEntry(Base):
    """One late or redelivered record (entry = its row_no), one delayed batch or one drift
    point (entry < 0, row_no null)."""

    __tablename__ = "arrival_ledger"
    batch_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    entry: Mapped[int] = mapped_column(Integer, primary_key=True)
    row_no: Mapped[int | None] = mapped_column(Integer, nullable=True)
    condition: Mapped[str] = mapped_column(String(16))  # late|redelivered|delayed|drift
    # late and redelivered: the start of the gold window the record's event time falls in
    belongs_to_window: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lateness_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    original_batch_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    original_row_no: Mapped[int | None] = mapped_column(Integer, nullable=True)
    released_after_batch_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    stream: Mapped[str | None] = mapped_column(String(16), nullable=True)  # drift
    from_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    contract_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    field: Mapped[str | None] = mapped_column(String(64), nullable=True)

    # each landed file asks which delayed batches waited for it
    __table_args__ = (Index("ix_arrival_ledger_released_after", "released_after_batch_id"),)


LEDGER_COLUMNS = (
    "batch_id",
    "entry",
    "row_no",
    "condition",
    "belongs_to_window",
    "lateness_ms",
    "original_batch_id",
    "original_row_no",
    "released_after_batch_id",
    "stream",
    "from_seq",
    "contract_version",
    "field",
)


class GoldWindowRevision(Base):
    """How often a gold window was revised: batches that added to it after it had closed (an
    interval starting at or after the window's end), which only late data does. A window no
    late record touched has no row here."""

    __tablename__ = "gold_window_revisions"
    window_seconds: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_start_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    revisions: Mapped[int] = mapped_column(Integer)
