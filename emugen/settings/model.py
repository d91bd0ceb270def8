"""The whole configuration tree: one frozen pydantic model, every bound checked."""

from __future__ import annotations

import hashlib
from datetime import UTC, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, Field, field_validator, model_validator

from emugen.settings.fields import Count, Frozen, Interval, Retention
from emugen.settings.streams import (
    CompaniesSettings,
    EmulatedCompanyCadence,
    EmulatedEventCadence,
    EventsSettings,
    ProductionCompanyCadence,
    ProductionEventCadence,
    Quality,
)
from emugen.vocabulary import Mode, Stream

# Every cadence block has an interval; all but production events also bound a batch size.
Cadence = (
    ProductionCompanyCadence
    | EmulatedCompanyCadence
    | ProductionEventCadence
    | EmulatedEventCadence
)


class Clock(Frozen):
    """Wall time, or a simulated clock whose interval bounds follow from seq alone."""

    kind: Literal["wall", "simulated"] = "wall"
    start: AwareDatetime | None = None

    @model_validator(mode="after")
    def _start_matches_kind(self) -> Clock:
        if self.kind == "simulated" and self.start is None:
            raise ValueError("a simulated clock needs start, e.g. start: 2026-01-01T00:00:00Z")
        if self.kind == "wall" and self.start is not None:
            raise ValueError("start is only allowed with kind: simulated")
        if self.start is not None:
            object.__setattr__(self, "start", self.start.astimezone(UTC))
        return self


class Fleet(Frozen):
    """How the Celery fleet paces itself; none of it shapes the data."""

    # Backpressure: over either limit a tick is skipped (and recorded), consuming no seq.
    max_queue_depth: Count = Field(50, ge=1, le=1_000_000)
    max_in_flight: Count = Field(100, ge=1, le=1_000_000)
    # A batch whose next stage has not run for this long is re-dispatched by the reaper.
    stuck_after: Interval = timedelta(seconds=60)
    reaper_interval: Interval = timedelta(seconds=10)
    # Transient database errors: retries with exponential backoff, then the batch is failed.
    max_retries: Count = Field(5, ge=0, le=100)
    # Retention (emulated batches only): a batch in gold for longer than this loses its bronze
    # rows, truth, silver events, quarantine rows and batch row; null keeps everything. Gold,
    # the company dimension and the newest batch per stream are always kept.
    retain_batches_for: Retention | None = timedelta(days=1)
    prune_interval: Interval = timedelta(minutes=5)
    # rows deleted per transaction: the SQLite write lock is held for ~tens of ms at a time
    prune_chunk_rows: Count = Field(20_000, ge=100, le=1_000_000)


# `emugen grade --policy` and `--tolerance` as the config spells them (checked again, with the
# duration, by emugen.grade.answer.policy when the dashboard grades)
GOLD_POLICY = r"^(exact|watermark=\S+|lookback=[0-9]+)$"
GOLD_TOLERANCE = r"^(abs|rel)=[0-9.]+(,(abs|rel)=[0-9.]+)?$"


class GradeTarget(Frozen):
    """An outside pipeline the dashboard grades live (see `emugen grade`); shapes no data."""

    kept: str | None = Field(
        None,
        min_length=1,
        description="Its silver (the filter): a Parquet, JSON Lines or CSV path or glob",
    )
    rejected: str | None = None  # its quarantine or dead letters, same forms
    match: Literal["auto", "lineage", "id"] = "auto"
    # dropped: the pipeline de-duplicates silently, so a dropped copy counts as caught
    duplicates: Literal["quarantined", "dropped"] = "quarantined"
    # re-graded at most this often (and never more than 1/20 of the time: see grade/live.py)
    every: Interval = timedelta(seconds=10)
    gold: str | None = Field(
        None,
        min_length=1,
        description="Its gold (the answer), graded like `emugen grade --gold`: a Parquet, "
        "JSON Lines or CSV path or glob",
    )
    columns: dict[str, str] = Field(
        {},
        description="Its gold's column names where they differ from `emugen export gold`'s, "
        "as {ours: yours}, e.g. {window_start: ws, events: n}",
    )
    window: Interval | None = Field(
        None, description="Its gold's window length when no window_seconds column says it"
    )
    policy: str = Field(
        "exact",
        pattern=GOLD_POLICY,
        description="How it treats late data: exact, watermark=DURATION or lookback=N",
    )
    trigger: Literal["any", "per-batch"] = Field(
        "any", description="per-batch: its watermark engine runs one micro-batch per landed file"
    )
    tolerance: str | None = Field(
        None, pattern=GOLD_TOLERANCE, description="A cell's allowed difference: abs=K,rel=R"
    )
    max_wrong_cells: Count = Field(
        0, ge=0, le=1_000_000, description="Wrong gold cells allowed before the verdict is FAIL"
    )

    @model_validator(mode="after")
    def _grades_something(self) -> GradeTarget:
        if self.kept is None and self.gold is None:
            raise ValueError("grade needs kept (its silver), gold (its answer) or both")
        return self


class Landing(Frozen):
    """The landing zone: every batch in bronze also written as files a file-source reads."""

    enabled: bool = True
    # a local path (relative ones resolve from the working directory, like the SQLite path),
    # file://..., or an fsspec URL such as s3://bucket/prefix (credentials from the environment)
    root: str = Field("var/landing", min_length=1)
    format: Literal["jsonl", "parquet"] = "jsonl"
    # passed to fsspec as is, e.g. {endpoint_url: http://127.0.0.1:9000} for an S3 stand-in
    storage_options: dict[str, Any] = {}

    @field_validator("root")
    @classmethod
    def _known_protocol(cls, value: str) -> str:
        from emugen.files.storage import check_root

        return check_root(value)


class Settings(Frozen):
    """The whole configuration; `mode` picks which cadence of each stream is active."""

    mode: Mode = Mode.emulated
    seed: Count = Field(42, ge=0, le=2**63 - 1)
    clock: Clock = Clock()
    database_url: str = Field("sqlite:///var/emugen.db", min_length=1)
    broker_url: str = Field("redis://127.0.0.1:6379/0", min_length=1)
    companies: CompaniesSettings = CompaniesSettings()
    events: EventsSettings = EventsSettings()
    fleet: Fleet = Fleet()
    grade: GradeTarget | None = None
    landing: Landing = Landing()

    @model_validator(mode="after")
    def _lateness_within_retention(self) -> Settings:
        late, retain = self.events.arrival.late, self.fleet.retain_batches_for
        if late is not None and retain is not None and late.max_lateness > retain:
            raise ValueError(
                f"events.arrival.late.max_lateness: got {late.max_lateness.total_seconds():g} "
                f"seconds, beyond fleet.retain_batches_for ({retain.total_seconds():g} seconds): "
                "a late record would belong to a window whose batches are pruned; lower it or "
                "keep batches longer"
            )
        return self

    def cadence(self, stream: Stream, mode: Mode | None = None) -> Cadence:
        """The cadence block of `stream` in `mode` (default: the active mode)."""
        section = self.companies if Stream(stream) is Stream.companies else self.events
        production = Mode(mode or self.mode) is Mode.production
        return section.production if production else section.emulated

    def interval(self, stream: Stream, mode: Mode | None = None) -> timedelta:
        return self.cadence(stream, mode).interval

    def quality(self, stream: Stream) -> Quality:
        return self.companies.quality if Stream(stream) is Stream.companies else self.events.quality

    def fingerprint(self) -> str:
        """A short hash of everything that shapes data (URLs excluded), stored with each batch."""
        shaping = self.model_dump(
            mode="json", exclude={"database_url", "broker_url", "fleet", "grade", "landing"}
        )
        if self.events.arrival.off:  # the fingerprint of a config without arrival stays as it was
            del shaping["events"]["arrival"]
        return hashlib.sha256(repr(sorted(_flatten(shaping))).encode()).hexdigest()[:16]


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [kv for k, v in value.items() for kv in _flatten(v, f"{prefix}{k}.")]
    return [(prefix, repr(value))]
