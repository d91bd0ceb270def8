"""The per-stream sections of the config: cadences, drivers per company, quality injection."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, ValidationInfo, field_validator, model_validator

from emugen.settings.arrival import Arrival
from emugen.settings.fields import MAX_BATCH, Count, Frozen, Interval, Rate, Real, Weight
from emugen.vocabulary import DEFECTS_FOR, Defect, EventType, Stream


class SizeRange(Frozen):
    """Batch size drawn uniformly in [min_batch_size, max_batch_size], duplicates included."""

    min_batch_size: Count = Field(ge=1, le=MAX_BATCH)
    max_batch_size: Count = Field(ge=1, le=MAX_BATCH)

    @field_validator("max_batch_size")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_batch_size")
        if low is not None and value < low:
            raise ValueError(f"must be ≥ min_batch_size ({low}), got {value}")
        return value


class ProductionCompanyCadence(SizeRange):
    """Production company batches: 100+ companies an hour."""

    interval: Interval = timedelta(hours=1)
    min_batch_size: Count = Field(100, ge=1, le=MAX_BATCH)
    max_batch_size: Count = Field(100, ge=1, le=MAX_BATCH)


class EmulatedCompanyCadence(SizeRange):
    """Emulated company batches: a handful of companies every few seconds."""

    interval: Interval = timedelta(seconds=10)
    min_batch_size: Count = Field(10, ge=1, le=MAX_BATCH)
    max_batch_size: Count = Field(10, ge=1, le=MAX_BATCH)


class EmulatedEventCadence(SizeRange):
    """Emulated driver-event batches: a fixed-size window of events, small enough to read."""

    interval: Interval = timedelta(seconds=10)
    min_batch_size: Count = Field(5, ge=1, le=MAX_BATCH)
    max_batch_size: Count = Field(20, ge=1, le=MAX_BATCH)


class ProductionEventCadence(Frozen):
    """Production driver-event batches: Poisson(events_per_driver × active drivers) events."""

    interval: Interval = timedelta(minutes=15)
    events_per_driver: Real = Field(1.0, gt=0.0, le=10_000.0)


class DriverRange(Frozen):
    """Drivers per company, drawn once per company ordinal (the same company in either mode)."""

    min: Count = Field(3, ge=1, le=10_000)
    max: Count = Field(40, ge=1, le=10_000)

    @field_validator("max")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min")
        if low is not None and value < low:
            raise ValueError(f"must be ≥ min ({low}), got {value}")
        return value


class Quality(Frozen):
    """Defect injection for one entity: `rate` of its records carry exactly one defect each."""

    rate: Rate = 0.05
    # relative weight per defect type; a type left out gets weight 1, weight 0 switches it off
    defects: dict[Defect, Weight] = Field(default_factory=dict)
    disabled: tuple[Defect, ...] = ()

    def weights(self, stream: Stream) -> dict[Defect, float]:
        """The effective weight of every defect type this entity can carry (0 = off)."""
        return {
            d: 0.0 if d in self.disabled else self.defects.get(d, 1.0) for d in DEFECTS_FOR[stream]
        }


def _quality_fits(stream: Stream, quality: Quality) -> Quality:
    """Checks that need the entity: which defects apply, and whether `rate` can be met."""
    allowed = DEFECTS_FOR[stream]
    for defect in (*quality.defects, *quality.disabled):
        if defect not in allowed:
            raise ValueError(
                f"got defect {defect.value!r}, which does not apply to {stream.value}; "
                f"allowed: {', '.join(d.value for d in allowed)}"
            )
    weights = quality.weights(stream)
    if quality.rate > 0 and not any(weights.values()):
        raise ValueError(
            f"got rate {quality.rate} while every defect weight is 0 or disabled; "
            "give one defect a weight > 0 or set rate: 0"
        )
    only_duplicates = all(w == 0 for d, w in weights.items() if d is not Defect.duplicate)
    if only_duplicates and quality.rate > 0.5:
        raise ValueError(
            f"got rate {quality.rate} with only 'duplicate' enabled; a duplicate needs a clean "
            "original, so the rate can be at most 0.5 (or enable another defect type)"
        )
    return quality


def _duplicate_room(
    quality: Quality, stream: Stream, where: str, ranges: list[tuple[str, SizeRange]]
) -> None:
    """With only `duplicate` on, a batch of n records has room for n // 2 duplicates (each
    needs a clean original). A rate above that is silently short on odd sizes (a batch of 1
    gets none), so refuse it: the smallest odd size in a range is the tightest."""
    weights = quality.weights(stream)
    if quality.rate == 0 or any(w for d, w in weights.items() if d is not Defect.duplicate):
        return
    for name, sizes in ranges:
        low, high = sizes.min_batch_size, sizes.max_batch_size
        odd = low if low % 2 else low + 1
        n = odd if odd <= high else low
        room = (n // 2) / n
        if quality.rate > room:
            raise ValueError(
                f"quality.rate: got {quality.rate} with only 'duplicate' enabled; a "
                f"batch of {n} records has room for {n // 2} duplicate(s) (each needs a clean "
                f"original), so with {where}.{name} batch sizes {low}..{high} the rate can be "
                f"at most {room:.4g} (or enable another defect type)"
            )


class CompaniesSettings(Frozen):
    """Company onboarding: per-mode cadence, the shape of a company, its quality injection."""

    drivers_per_company: DriverRange = DriverRange()
    active_rate: Rate = 0.95
    production: ProductionCompanyCadence = ProductionCompanyCadence()
    emulated: EmulatedCompanyCadence = EmulatedCompanyCadence()
    quality: Quality = Quality()

    @field_validator("quality")
    @classmethod
    def _quality_applies(cls, value: Quality) -> Quality:
        return _quality_fits(Stream.companies, value)

    @model_validator(mode="after")
    def _duplicates_fit(self) -> CompaniesSettings:
        _duplicate_room(
            self.quality,
            Stream.companies,
            "companies",
            [("production", self.production), ("emulated", self.emulated)],
        )
        return self


class EventsSettings(Frozen):
    """Driver events: per-mode cadence, event-type mix, missing-GPS share, quality injection."""

    event_types: dict[EventType, Weight] = Field(
        default_factory=lambda: {
            EventType.start_driving: 0.40,
            EventType.stopped_driving: 0.35,
            EventType.delivered: 0.25,
        }
    )
    # A null location is valid data (GPS gaps happen), not a defect.
    location_missing_rate: Rate = 0.05
    production: ProductionEventCadence = ProductionEventCadence()
    emulated: EmulatedEventCadence = EmulatedEventCadence()
    quality: Quality = Quality()
    # late, out-of-order, redelivered, delayed data and schema drift: all off by default
    arrival: Arrival = Arrival()

    @field_validator("event_types")
    @classmethod
    def _some_event_type(cls, value: dict[EventType, float]) -> dict[EventType, float]:
        if not any(value.values()):
            raise ValueError(
                "every event type weight is 0; give at least one of "
                f"{', '.join(e.value for e in EventType)} a weight > 0"
            )
        return value

    @field_validator("quality")
    @classmethod
    def _quality_applies(cls, value: Quality) -> Quality:
        return _quality_fits(Stream.events, value)

    @model_validator(mode="after")
    def _duplicates_fit(self) -> EventsSettings:
        # production sizes are Poisson draws in the thousands: n // 2 / n is 0.5 to 1 part in
        # a thousand there, so only the emulated range can fall short of a rate ≤ 0.5
        _duplicate_room(self.quality, Stream.events, "events", [("emulated", self.emulated)])
        return self
