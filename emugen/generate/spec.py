"""The batch spec: everything a batch's content depends on, stored with the batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypedDict, Unpack

from pydantic import (
    AwareDatetime,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from emugen.errors import SpecError
from emugen.generate.exclusions import Exclusions
from emugen.settings import MAX_BATCH, Frozen, ProductionEventCadence, Settings
from emugen.settings.arrival import Arrival
from emugen.vocabulary import DEFECTS_FOR, Defect, EventType, Mode, Stream

# Bump when generated content changes for an unchanged spec; replay refuses other versions.
GENERATOR_VERSION = 1
# The store keeps seq in a signed 64-bit column. Ordinals enter int64 arithmetic (driver keys are
# ordinal × 1,000,003 + index): past this bound ids would wrap and companies collapse onto each
# other, so the bound is refused up front rather than produce silent duplicates.
MAX_SEQ = 2**63 - 1
MAX_ORDINAL = 9_000_000_000_000


class FixedSize(Frozen):
    kind: Literal["fixed"] = "fixed"
    count: int = Field(ge=0, le=MAX_BATCH)


class UniformSize(Frozen):
    kind: Literal["uniform"] = "uniform"
    min: int = Field(ge=1)
    max: int = Field(ge=1)


class PoissonSize(Frozen):
    """Poisson(per_driver × active drivers among the watermark's companies)."""

    kind: Literal["poisson"] = "poisson"
    per_driver: float = Field(gt=0)


SizeRule = Annotated[FixedSize | UniformSize | PoissonSize, Field(discriminator="kind")]


class CompanyShape(Frozen):
    """What a company looks like; events need it too, to know each company's drivers."""

    drivers_min: int = Field(ge=1)
    drivers_max: int = Field(ge=1)
    active_rate: float = Field(ge=0, le=1)


class LateSpec(Frozen):
    rate: float = Field(ge=0, le=1)
    max_lateness_ms: int = Field(ge=1)


class RedeliveredSpec(Frozen):
    rate: float = Field(ge=0, le=1)
    max_age: int = Field(ge=1)
    # the specs of the batches copies come from (their own copies left out), newest first
    sources: tuple[BatchSpec, ...] = ()


class DelayedSpec(Frozen):
    rate: float = Field(ge=0, le=1)
    max_delay: int = Field(ge=1)


class DriftSpec(Frozen):
    from_seq: int = Field(ge=1)
    field: str


class ArrivalSpec(Frozen):
    """A batch's arrival conditions; absent from a spec whose stream has them all off."""

    contract_version: int = Field(1, ge=1)  # 2 once the drift field is part of the contract
    late: LateSpec | None = None
    out_of_order: bool = False
    redelivered: RedeliveredSpec | None = None
    delayed: DelayedSpec | None = None
    drift: DriftSpec | None = None


class BatchSpec(Frozen):
    """`generate(spec)` is a pure function of this: same spec, byte-identical batch."""

    generator_version: int = GENERATOR_VERSION
    seed: int = Field(ge=0, le=2**63 - 1)
    stream: Stream
    seq: int = Field(ge=1, le=MAX_SEQ)
    mode: Mode
    interval_start: AwareDatetime
    interval_end: AwareDatetime
    size: SizeRule
    first_ordinal: int = Field(0, ge=0, le=MAX_ORDINAL)  # companies: the first one onboarded
    watermark: int = Field(0, ge=0, le=MAX_ORDINAL)  # events: companies 0..watermark-1 appear
    # events: ordinals below the watermark that silver does not hold (their record was
    # defective, or their batch failed). Written by reference (see generate.exclusions): the
    # list is what specs made before carry, and what a hand-made spec may still give.
    excluded_ordinals: tuple[int, ...] = ()
    exclusions: Exclusions | None = None
    company_shape: CompanyShape
    event_types: dict[EventType, float] = Field(default_factory=dict)
    location_missing_rate: float = Field(0.0, ge=0, le=1)
    quality_rate: float = Field(0.0, ge=0, le=1)
    quality_weights: dict[Defect, float] = Field(default_factory=dict)
    arrival: ArrivalSpec | None = None  # events only; None: on time, once, in order, one schema

    @model_serializer(mode="wrap")
    def _arrival_only_when_on(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a spec without arrival conditions serialises exactly as before they existed
        data: dict[str, Any] = handler(self)
        if self.arrival is None:
            data.pop("arrival", None)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> BatchSpec:
        if self.interval_end <= self.interval_start:
            raise ValueError("interval_end must be after interval_start")
        if isinstance(self.size, UniformSize) and self.size.max < self.size.min:
            raise ValueError("size.max must be ≥ size.min")
        if isinstance(self.size, PoissonSize) and self.stream is not Stream.events:
            raise ValueError("a poisson size only applies to the events stream")
        if self.exclusions is not None and self.excluded_ordinals:
            raise ValueError("give excluded_ordinals or exclusions, not both")
        unknown = set(self.quality_weights) - set(DEFECTS_FOR[self.stream])
        if unknown:
            raise ValueError(f"defects {sorted(unknown)} do not apply to {self.stream.value}")
        if self.arrival is not None and self.stream is not Stream.events:
            raise ValueError("arrival conditions only apply to the events stream")
        return self

    @property
    def interval(self) -> timedelta:
        return self.interval_end - self.interval_start


def interval_for(
    settings: Settings, stream: Stream, seq: int, scheduled_at: datetime | None, mode: Mode
) -> tuple[datetime, datetime]:
    """The interval that just closed at `scheduled_at`; a simulated clock derives it from seq."""
    length = settings.interval(stream, mode)
    if settings.clock.kind == "simulated":
        assert settings.clock.start is not None
        try:
            end = settings.clock.start + length * seq
        except OverflowError:
            raise SpecError(
                f"seq {seq} puts the simulated clock past the year 9999 (clock.start "
                f"{settings.clock.start.isoformat()} + {seq} × {length}); use a smaller seq"
            ) from None
    else:
        if scheduled_at is None:
            scheduled_at = datetime.now(UTC)
        if scheduled_at.tzinfo is None:
            raise SpecError("scheduled_at must carry a timezone (UTC), e.g. 2026-01-01T00:00:00Z")
        end = scheduled_at.astimezone(UTC)
    # Millisecond-aligned bounds make every generated timestamp exactly representable.
    end = end.replace(microsecond=end.microsecond // 1000 * 1000)
    return end - length, end


def _check_bounds(
    stream: Stream, seq: int, size: int | None, first_ordinal: int, watermark: int
) -> None:
    if not 1 <= seq <= MAX_SEQ:
        raise SpecError(
            f"seq must be between 1 and {MAX_SEQ:,} (batches are numbered from 1), got {seq:,}"
        )
    if size is not None and not 0 <= size <= MAX_BATCH:
        raise SpecError(
            f"size must be between 0 and {MAX_BATCH:,} records (the batch bound), got {size:,}"
        )
    last = first_ordinal + (size if size is not None else MAX_BATCH)
    if stream is Stream.companies and (first_ordinal < 0 or last > MAX_ORDINAL):
        raise SpecError(
            f"first ordinal must be between 0 and {MAX_ORDINAL - MAX_BATCH:,} so "
            f"every company id stays distinct, got {first_ordinal:,} (with seq "
            "and no --first-ordinal it is (seq-1) × the max company batch size)"
        )
    if stream is Stream.events and not 0 <= watermark <= MAX_ORDINAL:
        raise SpecError(
            f"watermark must be between 0 and {MAX_ORDINAL:,} companies, got {watermark:,}"
        )


class SpecOptions(TypedDict, total=False):
    """The keyword options of `build_spec`: where the batch sits and what overrides the config."""

    scheduled_at: datetime | None  # beat's tick; None: the interval follows from seq alone
    first_ordinal: int  # companies: the ordinal of the batch's first company
    watermark: int  # events: how many companies exist to reference
    excluded_ordinals: tuple[int, ...]  # events: companies not to reference, listed
    exclusions: Exclusions | None  # events: the same by reference to the run's ledger
    size: int | None  # a fixed record count instead of the cadence's rule
    mode: Mode | str | None  # instead of the config's mode
    sources: tuple[BatchSpec, ...]  # events: earlier batches' specs, for redelivered copies


def build_spec(
    settings: Settings, stream: Stream | str, seq: int, **options: Unpack[SpecOptions]
) -> BatchSpec:
    """Resolve the config in force into the spec of batch `seq` of `stream`."""
    unknown = options.keys() - SpecOptions.__optional_keys__
    if unknown:  # what a keyword-only signature refused before the options had a type
        raise TypeError(f"build_spec() got unexpected keyword arguments {sorted(unknown)}")
    scheduled_at = options.get("scheduled_at")
    first_ordinal = options.get("first_ordinal", 0)
    watermark = options.get("watermark", 0)
    excluded_ordinals = options.get("excluded_ordinals", ())
    exclusions = options.get("exclusions")
    size = options.get("size")
    mode = options.get("mode")
    try:
        stream = Stream(stream)
        mode = Mode(mode or settings.mode)
    except ValueError as exc:
        raise SpecError(f"{exc}; streams: companies, events; modes: production, emulated") from None
    _check_bounds(stream, seq, size, first_ordinal, watermark)
    start, end = interval_for(settings, stream, seq, scheduled_at, mode)
    cadence = settings.cadence(stream, mode)
    rule: FixedSize | UniformSize | PoissonSize
    if size is not None:
        rule = FixedSize(count=size)
    elif isinstance(cadence, ProductionEventCadence):
        rule = PoissonSize(per_driver=cadence.events_per_driver)
    else:
        rule = UniformSize(min=cadence.min_batch_size, max=cadence.max_batch_size)
    quality = settings.quality(stream)
    companies = settings.companies
    return BatchSpec(
        seed=settings.seed,
        stream=stream,
        seq=seq,
        mode=mode,
        interval_start=start,
        interval_end=end,
        size=rule,
        first_ordinal=first_ordinal if stream is Stream.companies else 0,
        watermark=watermark if stream is Stream.events else 0,
        excluded_ordinals=tuple(sorted(excluded_ordinals)) if stream is Stream.events else (),
        exclusions=exclusions if stream is Stream.events else None,
        company_shape=CompanyShape(
            drivers_min=companies.drivers_per_company.min,
            drivers_max=companies.drivers_per_company.max,
            active_rate=companies.active_rate,
        ),
        event_types=dict(settings.events.event_types) if stream is Stream.events else {},
        location_missing_rate=(
            settings.events.location_missing_rate if stream is Stream.events else 0.0
        ),
        quality_rate=quality.rate,
        quality_weights={d: w for d, w in quality.weights(stream).items() if w > 0},
        arrival=arrival_spec(settings.events.arrival, seq, options.get("sources", ()))
        if stream is Stream.events
        else None,
    )


def late_horizon_ms(spec: BatchSpec) -> int:
    """How far before its interval a record of this batch may lie and still be valid (late)."""
    late = spec.arrival.late if spec.arrival is not None else None
    return 0 if late is None else late.max_lateness_ms


def arrival_spec(arrival: Arrival, seq: int, sources: tuple[BatchSpec, ...]) -> ArrivalSpec | None:
    """The arrival part of batch `seq`'s spec; `sources` are the earlier batches' specs (any
    order, any number): those within `max_age` are kept, without their own sources."""
    if arrival.off:
        return None
    late, redo, delayed, drift = arrival.late, arrival.redelivered, arrival.delayed, arrival.drift
    kept: tuple[BatchSpec, ...] = ()
    if redo is not None:
        near = sorted((s for s in sources if 0 < seq - s.seq <= redo.max_age), key=lambda s: -s.seq)
        kept = tuple(without_sources(s) for s in near)
    return ArrivalSpec(
        contract_version=2 if drift is not None and seq >= drift.from_seq else 1,
        late=None
        if late is None
        else LateSpec(
            rate=late.rate, max_lateness_ms=late.max_lateness // timedelta(milliseconds=1)
        ),
        out_of_order=arrival.out_of_order,
        redelivered=None
        if redo is None
        else RedeliveredSpec(rate=redo.rate, max_age=redo.max_age, sources=kept),
        delayed=None
        if delayed is None
        else DelayedSpec(rate=delayed.rate, max_delay=delayed.max_delay),
        drift=None if drift is None else DriftSpec(from_seq=drift.from_seq, field=drift.field),
    )


def without_sources(spec: BatchSpec) -> BatchSpec:
    """`spec` as a source of copies: its own rows only (its copies come after them)."""
    arrival = spec.arrival
    if arrival is None or arrival.redelivered is None or not arrival.redelivered.sources:
        return spec
    redo = arrival.redelivered.model_copy(update={"sources": ()})
    return spec.model_copy(update={"arrival": arrival.model_copy(update={"redelivered": redo})})
