"""Arrival conditions of a stream: late, out-of-order, redelivered, delayed data and schema drift.

All of them are off by default, and with them off nothing generated changes. The records they
produce are valid data: they break no contract, and a correct pipeline keeps them (or, for a
redelivered copy, drops it as a repeat of what it already holds).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, field_validator

from emugen.settings.fields import Count, Frozen, Rate, _iso, _parse_duration

MAX_LATENESS = timedelta(days=7)
MAX_AGE = 100  # batches back a redelivered copy may come from (each is regenerated to copy it)
MAX_DELAY = 100  # batches a delayed file may wait behind
# event fields today, and the extra fields the schema_mismatch defect injects: a drift field
# must be new to both, or a defect after the drift point would be valid data
EVENT_FIELDS = (
    "event_id",
    "company_id",
    "driver_id",
    "truck_id",
    "event_type",
    "event_timestamp",
    "location",
)
DEFECT_EXTRA_FIELDS = ("_ingested_at", "source_system", "notes", "speed_kmh", "schema_version")
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def _check_lateness(value: timedelta) -> timedelta:
    if not timedelta(milliseconds=1) <= value <= MAX_LATENESS:
        raise ValueError(
            f"must be between 1 ms and 7 days (PT0.001S..P7D), got "
            f"{value.total_seconds():g} seconds"
        )
    return value


Lateness = Annotated[
    timedelta,
    BeforeValidator(_parse_duration),
    AfterValidator(_check_lateness),
    PlainSerializer(_iso, return_type=str),
    Field(json_schema_extra={"type": "string", "examples": ["PT30S", "30s", 30]}),
]


class Late(Frozen):
    """`rate` of the records carry an event time before their batch's interval, by up to
    `max_lateness`: they belong to an earlier window."""

    rate: Rate
    max_lateness: Lateness


class Redelivered(Frozen):
    """Copies, `rate` of a batch's own records in number, of clean records that landed in one
    of the `max_age` batches before it: at-least-once delivery, byte for byte the same."""

    rate: Rate
    max_age: Count = Field(ge=1, le=MAX_AGE)


class Delayed(Frozen):
    """`rate` of the batches have their landing file released only after the next 1 to
    `max_delay` batches' files (an upstream outage); bronze still gets them on schedule."""

    rate: Rate
    max_delay: Count = Field(ge=1, le=MAX_DELAY)


class Drift(Frozen):
    """An additive schema change: from batch `from_seq` on, records carry the optional
    `field` (contract version 2); before it, the same field is a schema_mismatch defect."""

    from_seq: Count = Field(ge=1, le=2**63 - 1)
    field: str = "odometer_km"

    @field_validator("field")
    @classmethod
    def _new_field(cls, value: str) -> str:
        if not _FIELD_NAME.match(value):
            raise ValueError(
                f"got {value!r}; a field name is lowercase letters, digits and _, "
                "starting with a letter, e.g. odometer_km"
            )
        if value in EVENT_FIELDS or value in DEFECT_EXTRA_FIELDS:
            raise ValueError(
                f"got {value!r}, which events already know (as a field or as a "
                f"schema_mismatch defect); name a new field, e.g. odometer_km"
            )
        return value


class Arrival(Frozen):
    """How a stream's records arrive. Every condition is off unless configured."""

    late: Late | None = None
    # off: a batch's records come in generation order (event-time order, a defect's copy after
    # its original, a late record in the slot it was drawn for); on: in a seeded shuffle
    out_of_order: bool = False
    redelivered: Redelivered | None = None
    delayed: Delayed | None = None
    drift: Drift | None = None

    @property
    def off(self) -> bool:
        return self == Arrival()
