"""Field types of the config tree: durations, counts, rates and the frozen base model."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
)

MIN_INTERVAL = timedelta(milliseconds=100)
MAX_INTERVAL = timedelta(days=7)
MAX_BATCH = 1_000_000

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
