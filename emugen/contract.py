"""The data contract: what a clean company and a clean driver event are, with one reason vocabulary.

Silver validates every bronze record with `check`; quality injection breaks exactly one rule of
this table per defective record, so every injected defect is caught here by construction.
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from emugen.vocabulary import EventType, Region, Stream


class Reason(StrEnum):
    """Why a record was rejected. Injected defects use the same names as their reasons."""

    unparseable = "unparseable"  # not JSON, or not a JSON object
    schema_mismatch = "schema_mismatch"  # unknown field or wrong type
    missing_field = "missing_field"
    null_value = "null_value"
    empty_string = "empty_string"
    invalid_enum = "invalid_enum"
    malformed_timestamp = "malformed_timestamp"
    out_of_range = "out_of_range"
    boundary_violation = "boundary_violation"  # outside the batch interval (or in the future)
    orphan_reference = "orphan_reference"  # company not (yet) in silver
    duplicate = "duplicate"  # key already seen (decided by silver, which knows what it holds)


@dataclass(frozen=True)
class Rule:
    """One field: its kind decides the checks, in the order listed in `check`."""

    name: str
    kind: str  # uuid | text | enum | bool | timestamp | count | location
    nullable: bool = False
    allowed: frozenset[str] = frozenset()


COMPANY_RULES = (
    Rule("company_id", "uuid"),
    Rule("company_name", "text"),
    Rule("region", "enum", allowed=frozenset(r.value for r in Region)),
    Rule("active", "bool"),
    Rule("onboarded_at", "timestamp"),
    Rule("drivers_count", "count"),
    Rule("trucks_count", "count"),
)
EVENT_RULES = (
    Rule("event_id", "uuid"),
    Rule("company_id", "uuid"),
    Rule("driver_id", "uuid"),
    Rule("truck_id", "uuid"),
    Rule("event_type", "enum", allowed=frozenset(e.value for e in EventType)),
    Rule("event_timestamp", "timestamp"),
    Rule("location", "location", nullable=True),
)
RULES = {Stream.companies: COMPANY_RULES, Stream.events: EVENT_RULES}
KEY_FIELD = {Stream.companies: "company_id", Stream.events: "event_id"}
TIME_FIELD = {Stream.companies: "onboarded_at", Stream.events: "event_timestamp"}
MAX_COUNT = 100_000
MAX_TEXT = 200

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_FOUR_UUIDS = re.compile(r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}){4}\Z")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z\Z")


@dataclass(frozen=True)
class Rejection:
    reason: Reason
    field: str | None
    detail: str


@dataclass(frozen=True)
class Context:
    """What a record is checked against: its batch interval and the companies silver holds."""

    interval_start: datetime
    interval_end: datetime
    known_companies: Container[str] | None = None  # None: skip the reference check


def parse(text: str | bytes) -> dict[str, Any] | Rejection:
    """Bronze text to a JSON object, or an `unparseable` rejection."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return Rejection(Reason.unparseable, None, f"not JSON: {exc}")
    if not isinstance(value, dict):
        return Rejection(Reason.unparseable, None, "not a JSON object")
    return value


Broken = tuple[Reason, str] | None


def _string_field(rule: Rule, v: Any) -> Broken:
    if type(v) is not str:
        return Reason.schema_mismatch, f"expected a string, got {type(v).__name__}"
    if not v.strip():
        return Reason.empty_string, "empty string"
    kind = rule.kind
    if kind == "uuid" and not _UUID.match(v):
        return Reason.schema_mismatch, "not a lowercase UUID"
    if kind == "text" and len(v) > MAX_TEXT:
        return Reason.out_of_range, f"longer than {MAX_TEXT} characters"
    if kind == "enum" and v not in rule.allowed:
        return Reason.invalid_enum, f"{v!r} is not one of {sorted(rule.allowed)}"
    if kind == "timestamp" and not _TIMESTAMP.match(v):
        return Reason.malformed_timestamp, f"{v!r} is not YYYY-MM-DDTHH:MM:SS[.fff]Z"
    return None


def _bool_field(rule: Rule, v: Any) -> Broken:
    return None if type(v) is bool else (Reason.schema_mismatch, "expected true or false")


def _count_field(rule: Rule, v: Any) -> Broken:
    if type(v) is not int:
        return Reason.schema_mismatch, f"expected an integer, got {type(v).__name__}"
    if not 1 <= v <= MAX_COUNT:
        return Reason.out_of_range, f"{v} is outside 1..{MAX_COUNT}"
    return None


def _location_field(rule: Rule, v: Any) -> Broken:
    """A location is {"lat": number, "lon": number} on Earth."""
    if type(v) is not dict or v.keys() != {"lat", "lon"}:
        return Reason.schema_mismatch, "expected {lat, lon}"
    lat, lon = v["lat"], v["lon"]
    if not (type(lat) in (int, float) and type(lon) in (int, float)):
        return Reason.schema_mismatch, "lat and lon must be numbers"
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return Reason.out_of_range, f"({lat}, {lon}) is not a point on Earth"
    return None


_FIELD_CHECKS = dict.fromkeys(("uuid", "text", "enum", "timestamp"), _string_field) | {
    "bool": _bool_field,
    "count": _count_field,
    "location": _location_field,
}


def _field(rule: Rule, v: Any) -> Broken:
    """The first rule this value breaks, or None. Order: type, emptiness, enum, format, range."""
    return _FIELD_CHECKS[rule.kind](rule, v)


def check(stream: Stream, record: Any, ctx: Context) -> dict[str, Any] | Rejection:
    """Validate one parsed record; return its typed values, or the first rule it breaks.

    Order: unknown fields, missing fields, nulls, then each field's own checks in table order,
    then the interval boundary, then the company reference. Nothing is ever healed.
    """
    typed = _FAST[stream](record, ctx)
    return typed if typed is not None else _explain(stream, record, ctx)


_EVENT_TYPES = frozenset(e.value for e in EventType)
_REGIONS = frozenset(r.value for r in Region)
_uuids, _stamp, _parse_time = _FOUR_UUIDS.match, _TIMESTAMP.match, datetime.fromisoformat


def _moment_inside(stamp: str, ctx: Context) -> datetime | None:
    """The stamp as a time, if it parses and falls inside the batch's interval."""
    try:
        moment = _parse_time(stamp)
    except ValueError:
        return None
    return moment if ctx.interval_start <= moment < ctx.interval_end else None


def _fast_event(r: Any, ctx: Context) -> dict[str, Any] | None:
    """The clean case in one pass; None sends the record to `_explain` for its exact reason.

    Every test here implies the matching test of the rule table, so a record accepted here is
    accepted there too (tests/test_contract.py checks the two agree on every defect type).
    """
    if type(r) is not dict or len(r) != 7:
        return None
    try:
        eid, cid, did, tid = r["event_id"], r["company_id"], r["driver_id"], r["truck_id"]
        kind, stamp, loc = r["event_type"], r["event_timestamp"], r["location"]
    except KeyError:
        return None
    if not (
        type(eid) is str
        and type(cid) is str
        and type(did) is str
        and type(tid) is str
        and type(kind) is str
        and type(stamp) is str
    ):
        return None
    # one regex over the four ids at once; equal 36-char lengths keep the slices aligned
    if not (
        len(eid) == len(cid) == len(did) == len(tid) == 36
        and _uuids(eid + cid + did + tid)
        and kind in _EVENT_TYPES
        and _stamp(stamp)
    ):
        return None
    if loc is not None:
        if type(loc) is not dict or len(loc) != 2:
            return None
        lat: Any = loc.get("lat")  # Any: the type() tests below are the narrowing
        lon: Any = loc.get("lon")
        if not (
            type(lat) in (int, float)
            and type(lon) in (int, float)
            and -90 <= lat <= 90
            and -180 <= lon <= 180
        ):
            return None
    moment = _moment_inside(stamp, ctx)
    if moment is None:
        return None
    if ctx.known_companies is not None and cid not in ctx.known_companies:
        return None
    return {
        "event_id": eid,
        "company_id": cid,
        "driver_id": did,
        "truck_id": tid,
        "event_type": kind,
        "event_timestamp": moment,
        "location": loc,
    }


def _fast_company(r: Any, ctx: Context) -> dict[str, Any] | None:
    if type(r) is not dict or len(r) != 7:
        return None
    try:
        cid, name, region, active = r["company_id"], r["company_name"], r["region"], r["active"]
        stamp, drivers, trucks = r["onboarded_at"], r["drivers_count"], r["trucks_count"]
    except KeyError:
        return None
    if not (
        type(cid) is str
        and type(name) is str
        and type(region) is str
        and type(active) is bool
        and type(stamp) is str
        and type(drivers) is int
        and type(trucks) is int
    ):
        return None
    if not (
        _UUID.match(cid)
        and name.strip()
        and len(name) <= MAX_TEXT
        and region in _REGIONS
        and _stamp(stamp)
        and 1 <= drivers <= MAX_COUNT
        and 1 <= trucks <= MAX_COUNT
    ):
        return None
    moment = _moment_inside(stamp, ctx)
    if moment is None:
        return None
    return {
        "company_id": cid,
        "company_name": name,
        "region": region,
        "active": active,
        "onboarded_at": moment,
        "drivers_count": drivers,
        "trucks_count": trucks,
    }


_FAST = {Stream.events: _fast_event, Stream.companies: _fast_company}


def _shape_rejection(rules: tuple[Rule, ...], record: dict[str, Any]) -> Rejection | None:
    """The first unknown or missing field, or None when the keys are exactly the rules'."""
    names = [r.name for r in rules]
    if len(record) == len(rules) and record.keys() == set(names):
        return None
    for key in record:
        if key not in names:
            return Rejection(Reason.schema_mismatch, key, f"unknown field {key!r}")
    for name in names:
        if name not in record:
            return Rejection(Reason.missing_field, name, f"{name} is missing")
    return None


def _typed_value(rule: Rule, v: Any) -> Any | Rejection:
    """One present field's typed value (timestamps parsed), or the first rule it breaks."""
    if v is None:
        if rule.nullable:
            return None
        return Rejection(Reason.null_value, rule.name, f"{rule.name} is null")
    broken = _field(rule, v)
    if broken is None and rule.kind == "timestamp":
        try:
            v = datetime.fromisoformat(v)
        except ValueError:
            broken = Reason.malformed_timestamp, f"{v!r} is not a real date and time"
    if broken:
        return Rejection(broken[0], rule.name, f"{rule.name}: {broken[1]}")
    return v


def _context_rejection(stream: Stream, typed: dict[str, Any], ctx: Context) -> Rejection | None:
    """The batch-level rules: the interval boundary, then the company reference."""
    moment = typed[TIME_FIELD[stream]]
    if not ctx.interval_start <= moment < ctx.interval_end:
        return Rejection(
            Reason.boundary_violation,
            TIME_FIELD[stream],
            f"{moment.isoformat()} is outside [{ctx.interval_start.isoformat()}, "
            f"{ctx.interval_end.isoformat()})",
        )
    known = ctx.known_companies
    if stream is Stream.events and known is not None and typed["company_id"] not in known:
        return Rejection(Reason.orphan_reference, "company_id", "company is not in silver")
    return None


def _explain(stream: Stream, record: Any, ctx: Context) -> dict[str, Any] | Rejection:
    """The rule-by-rule path: slower, and exact about the first rule a record breaks."""
    if not isinstance(record, dict):
        return Rejection(Reason.unparseable, None, "not a JSON object")
    rules = RULES[stream]
    shape = _shape_rejection(rules, record)
    if shape is not None:
        return shape
    typed: dict[str, Any] = {}
    for rule in rules:
        value = _typed_value(rule, record[rule.name])
        if isinstance(value, Rejection):
            return value
        typed[rule.name] = value
    return _context_rejection(stream, typed, ctx) or typed
