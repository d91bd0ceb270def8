"""The configuration tree: one frozen pydantic model loaded from YAML, every bound checked."""

from __future__ import annotations

import hashlib
import math
import os
import re
import reprlib
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from emugen.config_file import decode, parse_yaml, read_config_bytes
from emugen.errors import ConfigError

DEFAULT_CONFIG = Path("config/emugen.yaml")
ENV_CONFIG = "EMUGEN_CONFIG"
ENV_HOME = "EMUGEN_HOME"  # a checkout or deployment folder holding config/emugen.yaml
MAX_PROBLEMS = 20  # a file with thousands of bad values needs its first few, not a wall
# Only locations and secrets come from the environment; everything that shapes data stays in
# the file, so the file alone says what a run produced (SC-004).
ENV_OVERRIDES = {"EMUGEN_DATABASE_URL": "database_url", "EMUGEN_BROKER_URL": "broker_url"}
ENV_LANDING_ROOT = "EMUGEN_LANDING_ROOT"  # landing.root
MIN_INTERVAL = timedelta(milliseconds=100)
MAX_INTERVAL = timedelta(days=7)
MAX_BATCH = 1_000_000


class Mode(StrEnum):
    production = "production"
    emulated = "emulated"


class Stream(StrEnum):
    companies = "companies"
    events = "events"


class EventType(StrEnum):
    start_driving = "start_driving"
    stopped_driving = "stopped_driving"
    delivered = "delivered"


class Region(StrEnum):
    US = "US"
    EU = "EU"
    SA = "SA"
    AUS = "AUS"


class Defect(StrEnum):
    missing_field = "missing_field"
    null_value = "null_value"
    malformed_timestamp = "malformed_timestamp"
    invalid_enum = "invalid_enum"
    duplicate = "duplicate"
    boundary_violation = "boundary_violation"
    schema_mismatch = "schema_mismatch"
    out_of_range = "out_of_range"
    empty_string = "empty_string"
    orphan_reference = "orphan_reference"


# orphan_reference needs a parent entity, and companies have none.
DEFECTS_FOR = {
    Stream.companies: tuple(d for d in Defect if d is not Defect.orphan_reference),
    Stream.events: tuple(Defect),
}

_SHORT_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_ISO_DURATION = TypeAdapter(timedelta)


def _parse_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration (PT10S, 10s or a number of seconds), not a boolean")
    if isinstance(value, int | float):
        return _seconds(float(value))
    if isinstance(value, str):
        short = _SHORT_DURATION.match(value)
        if short:
            return _seconds(float(short[1]) * _UNIT_SECONDS[short[2]])
        if value.strip().upper().startswith("P"):
            try:
                return _ISO_DURATION.validate_python(value.strip())
            except ValidationError:
                pass
    raise ValueError(
        f"malformed duration {value!r}: use ISO-8601 (PT10S, PT15M, PT1H), "
        "a number of seconds (10, 0.5) or a short form (10s, 15m, 1h)"
    )


def _seconds(seconds: float) -> timedelta:
    # timedelta overflows past ~10^9 days and rejects NaN; say so in range terms instead.
    if not math.isfinite(seconds) or abs(seconds) > _MAX_SECONDS_PARSED:
        raise ValueError(
            f"interval must be between 0.1 s and 7 days (PT0.1S..P7D), got {seconds:g} seconds"
        )
    return timedelta(seconds=seconds)


def _not_bool(value: Any) -> Any:
    # YAML turns yes/no/true into booleans, and bool is an int: 'rate: yes' must not mean 1.0.
    if isinstance(value, bool):
        raise ValueError(f"expected a number, not the boolean {str(value).lower()}")
    return value


def _check_interval(value: timedelta) -> timedelta:
    if not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise ValueError(
            f"interval must be between 0.1 s and 7 days (PT0.1S..P7D), got {_iso(value)}"
        )
    return value


def _iso(value: timedelta) -> str:
    seconds = value.total_seconds()
    return f"PT{seconds:g}S"


Interval = Annotated[
    timedelta,
    BeforeValidator(_parse_duration),
    AfterValidator(_check_interval),
    PlainSerializer(_iso, return_type=str),
    Field(json_schema_extra={"type": "string", "examples": ["PT10S", "10s", 10]}),
]
_MAX_SECONDS_PARSED = 10.0**12
MIN_RETENTION = timedelta(minutes=1)
MAX_RETENTION = timedelta(days=3650)


def _check_retention(value: timedelta) -> timedelta:
    if not MIN_RETENTION <= value <= MAX_RETENTION:
        raise ValueError(
            "retention must be between 1 minute and 3650 days (PT1M..P3650D), "
            f"got {value.total_seconds() / 86400:g} days"
        )
    return value


Retention = Annotated[
    timedelta,
    BeforeValidator(_parse_duration),
    AfterValidator(_check_retention),
    PlainSerializer(_iso, return_type=str),
    Field(json_schema_extra={"type": "string", "examples": ["P1D", "12h", 86400]}),
]
Count = Annotated[int, BeforeValidator(_not_bool)]
Real = Annotated[float, BeforeValidator(_not_bool), Field(allow_inf_nan=False)]
Rate = Annotated[Real, Field(ge=0.0, le=1.0)]
Weight = Annotated[Real, Field(ge=0.0)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


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
            d: 0.0 if d in self.disabled else self.defects.get(d, 1.0)
            for d in DEFECTS_FOR[stream]
        }


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


def _duplicate_room(quality: Quality, stream: Stream, where: str,
                    ranges: list[tuple[str, SizeRange]]) -> None:
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
                f"at most {room:.4g} (or enable another defect type)")


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
        _duplicate_room(self.quality, Stream.companies, "companies",
                        [("production", self.production), ("emulated", self.emulated)])
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


class GradeTarget(Frozen):
    """An outside pipeline the dashboard grades live (see `emugen grade`); shapes no data."""

    kept: str = Field(min_length=1)  # its silver: a Parquet/JSON Lines/CSV path or glob
    rejected: str | None = None  # its quarantine or dead letters, same forms
    match: Literal["auto", "lineage", "id"] = "auto"
    # dropped: the pipeline de-duplicates silently, so a dropped copy counts as caught
    duplicates: Literal["quarantined", "dropped"] = "quarantined"
    # re-graded at most this often (and never more than 1/20 of the time: see grade/live.py)
    every: Interval = timedelta(seconds=10)


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
        from emugen.sinks.filesystem import check_root

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

    def cadence(
        self, stream: Stream, mode: Mode | None = None
    ) -> SizeRange | ProductionEventCadence:
        """The cadence block of `stream` in `mode` (default: the active mode)."""
        section = self.companies if Stream(stream) is Stream.companies else self.events
        return getattr(section, (mode or self.mode).value)

    def interval(self, stream: Stream, mode: Mode | None = None) -> timedelta:
        return self.cadence(stream, mode).interval

    def quality(self, stream: Stream) -> Quality:
        return self.companies.quality if Stream(stream) is Stream.companies else self.events.quality

    def fingerprint(self) -> str:
        """A short hash of everything that shapes data (URLs excluded), stored with each batch."""
        shaping = self.model_dump(mode="json", exclude={"database_url", "broker_url", "fleet",
                                                       "grade", "landing"})
        return hashlib.sha256(repr(sorted(_flatten(shaping))).encode()).hexdigest()[:16]


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [kv for k, v in value.items() for kv in _flatten(v, f"{prefix}{k}.")]
    return [(prefix, repr(value))]


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use: the argument, else $EMUGEN_CONFIG, else
    $EMUGEN_HOME/config/emugen.yaml, else config/emugen.yaml under the current directory."""
    if path:
        return Path(path)
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG])
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]) / DEFAULT_CONFIG
    return DEFAULT_CONFIG


def config_origin(path: str | os.PathLike[str] | None = None) -> str:
    """Where config_path() found its answer, for messages that say where emugen looked."""
    if path:
        return "given with --config"
    if os.environ.get(ENV_CONFIG):
        return f"from ${ENV_CONFIG}"
    if os.environ.get(ENV_HOME):
        return f"from ${ENV_HOME}"
    return f"under the current directory {Path.cwd()}; set ${ENV_HOME} or pass --config"


def parse_settings(data: Any, source: str = "<data>", env: bool = True) -> Settings:
    """Validate a mapping into Settings, turning pydantic's errors into one ConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [f"the file must hold a mapping of keys, got {_kind(data)}"])
    if env:
        data = {**data, **{key: os.environ[var] for var, key in ENV_OVERRIDES.items()
                           if os.environ.get(var)}}
        if os.environ.get(ENV_LANDING_ROOT) and isinstance(data.get("landing", {}), dict):
            data["landing"] = {**data.get("landing", {}), "root": os.environ[ENV_LANDING_ROOT]}
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _problems(exc)) from None


def _problems(exc: ValidationError) -> list[str]:
    problems = [_describe(err) for err in exc.errors(include_url=False)[:MAX_PROBLEMS]]
    more = exc.error_count() - len(problems)
    return problems + ([f"... and {more:,} more problems like these"] if more > 0 else [])


def load_settings(path: str | os.PathLike[str] | None = None, env: bool = True) -> Settings:
    """Read and validate a YAML config file (see config/ for presets)."""
    file = config_path(path)
    try:
        raw = read_config_bytes(file)
    except FileNotFoundError:
        raise ConfigError(str(file), [
            f"no such file (looked at {file.absolute()}, {config_origin(path)}); copy a "
            f"preset (e.g. cp config/emulated.yaml {file}) or pass --config"]) from None
    return settings_from_text(decode(raw, str(file)), str(file), env=env)


def settings_from_text(text: str, source: str, env: bool = True) -> Settings:
    """Validate the YAML text of a config file (the watcher reads once and parses this)."""
    return parse_settings(parse_yaml(text, source), source, env=env)


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _describe(err: Any) -> str:
    """One line per pydantic error: the dotted field, the bad value, what is allowed."""
    loc = ".".join(str(p) for p in err["loc"] if p != "[key]") or "(top level)"
    kind, msg, value = err["type"], err["msg"], err.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(err["loc"][:-1])
        return f"{loc}: unknown key; allowed here: {', '.join(allowed)}"
    if kind == "missing":
        return f"{loc}: required but missing"
    msg = msg.removeprefix("Value error, ")
    if kind == "enum":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{loc}: got {_short(value)}; allowed: {expected}"
    if kind == "value_error":  # our own validators already name the value where it helps
        return f"{loc}: {msg}" if "got" in msg else f"{loc}: got {_short(value)}; {msg}"
    return f"{loc}: got {_short(value)}; {msg[0].lower()}{msg[1:]}"


_BOUNDED = reprlib.Repr()  # Python 3.11's Repr takes no keyword arguments
for _name, _limit in (("maxlevel", 3), ("maxdict", 4), ("maxlist", 4), ("maxtuple", 4),
                      ("maxset", 4), ("maxstring", 60), ("maxlong", 40), ("maxother", 60)):
    setattr(_BOUNDED, _name, _limit)


def _short(value: Any) -> str:
    # reprlib stops after a few items per level: the cost and the text stay bounded however
    # large (or alias-expanded) the value is; a plain repr() of a YAML bomb runs for minutes.
    text = _BOUNDED.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: Any = Settings
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ["(see `emugen config schema`)"]
        model = annotation
    return list(model.model_fields)


def now_utc() -> datetime:
    return datetime.now(UTC)
