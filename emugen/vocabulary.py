"""The words every layer shares: modes, streams, event types, regions, defects, epoch-ms time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

import numpy as np


class Mode(StrEnum):
    production = "production"
    emulated = "emulated"


# Gold's window per mode: short enough to watch fill up emulated, an hour at production volume.
WINDOW_SECONDS = {Mode.emulated: 60, Mode.production: 3600}


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

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def to_ms(moment: datetime) -> int:
    """Whole milliseconds since the epoch (specs hold millisecond-aligned bounds)."""
    return (moment - EPOCH) // MS


def iso_ms(epoch_ms: np.ndarray) -> list[str]:
    """Format epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`, vectorised."""
    if len(epoch_ms) == 0:
        return []
    stamps = np.asarray(epoch_ms, dtype=np.int64).astype("datetime64[ms]")
    texts: list[str] = np.datetime_as_string(stamps, unit="ms", timezone="UTC").tolist()
    return texts


def iso_one(epoch_ms: int) -> str:
    """One epoch-millisecond moment in the same text form as `iso_ms`."""
    return iso_ms(np.array([epoch_ms]))[0]
