"""The tables. Typed SQLAlchemy 2 models for reading; bulk writes go through their Core tables."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from emugen.db.columns import JSONText, UTCDateTime

SCHEMA_VERSION = 6  # what each version changed: emugen/db/migrate.py


class Base(DeclarativeBase):
    # every model here maps one Table (SQLAlchemy types it as the wider FromClause): this lets
    # the Core bulk paths take `Model.__table__` as the Table it is
    __table__: ClassVar[Table]


class SchemaVersion(Base):
    __tablename__ = "schema_version"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BatchRow(Base):
    """One row per batch (FR-007): its spec, counts, stage times and status."""

    __tablename__ = "batches"
    batch_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    stream: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(BigInteger)
    mode: Mapped[str] = mapped_column(String(16))
    seed: Mapped[int] = mapped_column(BigInteger)
    config_fingerprint: Mapped[str] = mapped_column(String(32))
    generator_version: Mapped[int] = mapped_column(Integer)
    # the BatchSpec as JSON, kept as written: replay regenerates from it
    spec: Mapped[str] = mapped_column(JSONText("json"))
    interval_start: Mapped[datetime] = mapped_column(UTCDateTime)
    interval_end: Mapped[datetime] = mapped_column(UTCDateTime)
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # companies: which ordinals this batch onboards; silver fills excluded_ordinals (JSON list)
    first_ordinal: Mapped[int] = mapped_column(BigInteger, default=0)
    ordinal_count: Mapped[int] = mapped_column(BigInteger, default=0)
    excluded_ordinals: Mapped[str | None] = mapped_column(JSONText, nullable=True)
    record_count: Mapped[int] = mapped_column(BigInteger)
    injected_count: Mapped[int] = mapped_column(BigInteger)
    injected_by_type: Mapped[str] = mapped_column(JSONText)  # JSON {defect: count}
    valid_count: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    corrupted_count: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    quarantined_by_reason: Mapped[str | None] = mapped_column(JSONText, nullable=True)
    # redelivered copies silver dropped (not defects): landed = valid + corrupted + these
    redelivered_count: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # bronze | silver | gold | failed
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    bronze_at: Mapped[datetime] = mapped_column(UTCDateTime)
    silver_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    gold_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    generate_ms: Mapped[float] = mapped_column(Float)
    bronze_ms: Mapped[float] = mapped_column(Float)
    silver_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    gold_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    # when the reaper last re-sent this batch's next stage (so it re-sends once per timeout)
    redispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # the Celery id of the generate task (a link to Flower's task page); None in-process
    task_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the pipeline queue's depth when the worker took the tick: the history chart's sample,
    # measured anyway by the backpressure gate and pruned with the batch row
    queue_depth: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (
        UniqueConstraint("stream", "seq", name="uq_batches_stream_seq"),
        # a retried generation of the same tick finds its batch instead of making a second one
        UniqueConstraint("stream", "scheduled_at", name="uq_batches_stream_tick"),
        Index("ix_batches_status", "status"),
        Index("ix_batches_generated_at", "generated_at"),
        # The dashboard reads these several times a second. A batch row is wide (its spec
        # carries the growing excluded_ordinals, ~2 KB after an hour at 1 s), so a table scan
        # costs ~14 ms at 5,000 batches and grows; these covering indexes answer in < 1 ms.
        Index("ix_batches_stream_status_records", "stream", "status", "record_count"),
        Index("ix_batches_stream_generated_at", "stream", "generated_at"),
        Index("ix_batches_stream_gold_at", "stream", "gold_at"),
        # the history charts read a window of batches by generated_at; covering every column
        # they use (batch_id: the truth's join key), so an hour at 1 s (7,200 batches) is
        # read without touching a wide row (docs/BENCHMARKS.md, `emugen bench history`)
        Index(
            "ix_batches_history",
            "generated_at",
            "status",
            "stream",
            "scheduled_at",
            "gold_at",
            "record_count",
            "injected_count",
            "queue_depth",
            "batch_id",
        ),
        # The company watermark walks company batches from a checkpoint in ordinal order (every
        # event batch), and retention picks them the same way: without this index both read
        # every company batch row ever made to find the few past the checkpoint.
        Index("ix_batches_stream_first_ordinal", "stream", "first_ordinal"),
        # the reaper looks for batches without a landing file every few seconds: covering,
        # so it reads ~60 bytes per batch instead of the wide row (279 -> 22 ms at 72k batches)
        Index("ix_batches_bronze_at_id", "bronze_at", "batch_id"),
    )


class BronzeRecord(Base):
    """Every record exactly as generated, dirty ones included."""

    __tablename__ = "bronze_records"
    batch_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    payload: Mapped[str] = mapped_column(Text)


class InjectedDefect(Base):
    """The ground truth, out of band: what was broken, where, and the reason silver must give."""

    __tablename__ = "injected_defects"
    batch_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    defect: Mapped[str] = mapped_column(String(32))
    field: Mapped[str | None] = mapped_column(String(64), nullable=True)
    original: Mapped[str | None] = mapped_column(Text, nullable=True)
    injected: Mapped[str | None] = mapped_column(Text, nullable=True)
    expected_reason: Mapped[str] = mapped_column(String(32))


class PlannedCompany(Base):
    """The company ids a company batch planned, by position (ordinal = first_ordinal + row_no):
    written at landing so silver finds the ordinals it did not take without the generator."""

    __tablename__ = "planned_companies"
    batch_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[str] = mapped_column(String(36))


class SilverCompany(Base):
    __tablename__ = "silver_companies"
    company_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    company_name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean)
    onboarded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    onboarded_ms: Mapped[int] = mapped_column(BigInteger)  # epoch ms: portable window maths
    drivers_count: Mapped[int] = mapped_column(Integer)
    trucks_count: Mapped[int] = mapped_column(Integer)
    batch_id: Mapped[str] = mapped_column(String(40))
    row_no: Mapped[int] = mapped_column(Integer)

    # gold's per-region window reads companies onboarded in a window: without this index it
    # scans every company ever onboarded, a cost that grows for as long as the fleet runs.
    # (batch_id, row_no): the batch page finds a page's silver rows without reading the
    # whole batch; it serves every batch_id lookup the old batch_id index served.
    __table_args__ = (
        Index("ix_silver_companies_onboarded_ms", "onboarded_ms"),
        Index("ix_silver_companies_batch_row", "batch_id", "row_no"),
    )


class SilverEvent(Base):
    __tablename__ = "silver_events"
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(36))
    driver_id: Mapped[str] = mapped_column(String(36))
    truck_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(20))
    event_timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    event_ms: Mapped[int] = mapped_column(BigInteger)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    batch_id: Mapped[str] = mapped_column(String(40))
    row_no: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_silver_events_ms", "event_ms"),
        Index("ix_silver_events_batch_row", "batch_id", "row_no"),
    )


class Quarantine(Base):
    """Every rejected bronze row with its reason; never healed, never dropped."""

    __tablename__ = "quarantine"
    batch_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    stream: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32))
    field: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(Text)


class GoldCompanyWindow(Base):
    """Per company per window: events by type, deliveries, distinct active drivers."""

    __tablename__ = "gold_company_window"
    window_seconds: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    window_start_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    events: Mapped[int] = mapped_column(Integer)
    start_driving: Mapped[int] = mapped_column(Integer)
    stopped_driving: Mapped[int] = mapped_column(Integer)
    delivered: Mapped[int] = mapped_column(Integer)
    active_drivers: Mapped[int] = mapped_column(Integer)

    # a window's rows are read together (the verdict's recomputation, the dashboard); the
    # primary key leads with company_id after window_seconds, so without this index each
    # such read scans all of gold
    __table_args__ = (Index("ix_gold_company_window_start", "window_seconds", "window_start_ms"),)


class GoldRegionWindow(Base):
    """Per region per window: companies onboarded, events and deliveries."""

    __tablename__ = "gold_region_window"
    window_seconds: Mapped[int] = mapped_column(Integer, primary_key=True)
    region: Mapped[str] = mapped_column(String(8), primary_key=True)
    window_start_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    companies_onboarded: Mapped[int] = mapped_column(Integer)
    events: Mapped[int] = mapped_column(Integer)
    deliveries: Mapped[int] = mapped_column(Integer)


class GoldWindowDriver(Base):
    """A driver gold counted as active in a company's window, and the batch that counted it
    first: gold adds each batch's share, and a driver two batches share is added once."""

    __tablename__ = "gold_window_drivers"
    window_seconds: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_start_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    driver_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(40), index=True)


class ControlState(Base):
    """Fleet-wide switches that survive restarts (one row per key), e.g. paused."""

    __tablename__ = "control_state"
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConfigReload(Base):
    """Every config load beat made: accepted (fingerprint, mode) or rejected (its problems)."""

    __tablename__ = "config_reloads"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    source: Mapped[str] = mapped_column(Text)
    accepted: Mapped[bool] = mapped_column(Boolean)
    fingerprint: Mapped[str | None] = mapped_column(String(32), nullable=True)
    mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    problems: Mapped[str | None] = mapped_column(JSONText, nullable=True)  # JSON list


class SkippedTick(Base):
    """A tick beat (or a worker) did not turn into a batch, and why: no seq was consumed."""

    __tablename__ = "skipped_ticks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    stream: Mapped[str] = mapped_column(String(16))
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # paused | queue_depth | in_flight | failed | expired | broker_down
    reason: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text)


class LandedFile(Base):
    """A batch's file in the landing zone (one per batch), written after bronze committed."""

    __tablename__ = "landed_files"
    batch_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    root: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(Text)  # under the root
    manifest_path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(BigInteger)
    landed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LandingFailure(Base):
    """The last landing error of a batch not landed yet (deleted once the batch lands)."""

    __tablename__ = "landing_failures"
    batch_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    root: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
