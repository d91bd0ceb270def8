"""Mutators: each breaks one contract rule of a clean record and says what it changed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from emugen.contract import RULES, TIME_FIELD, Rule
from emugen.generate.seeding import TAG_PHANTOM, mix64, uuid_strings
from emugen.generate.spec import BatchSpec, late_horizon_ms
from emugen.settings.arrival import DEFECT_EXTRA_FIELDS
from emugen.vocabulary import Defect, iso_one, to_ms

_STRING_KINDS = ("uuid", "text", "enum", "timestamp")
_BAD_ENUM = {
    "region": ("EMEA", "APAC", "LATAM", "us", "Europe", "North America"),
    "event_type": ("START_DRIVING", "driving", "stopped", "delivery", "Delivered", "idle"),
}
_EXTRA_FIELDS = DEFECT_EXTRA_FIELDS  # a drift field may never be one of them


# -- mutators: (spec, record, 4 uniforms, index) -> (field, original JSON, injected JSON) --

Mutation = tuple[str | None, str | None, str | None]


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _pick(options: tuple[Any, ...] | list[Any], u: float) -> Any:
    return options[min(int(u * len(options)), len(options) - 1)]


def _rules(spec: BatchSpec, test: Callable[[Rule], bool]) -> list[Rule]:
    return [r for r in RULES[spec.stream] if test(r)]


def _set(record: dict[str, Any], field: str, value: Any) -> Mutation:
    before = json_text(record[field])
    record[field] = value
    return field, before, json_text(value)


def _missing(spec: BatchSpec, record: dict[str, Any], u: np.ndarray, _: int) -> Mutation:
    field = _pick(_rules(spec, lambda r: True), u[0]).name
    return field, json_text(record.pop(field)), None


def _null(spec: BatchSpec, record: dict[str, Any], u: np.ndarray, _: int) -> Mutation:
    return _set(record, _pick(_rules(spec, lambda r: not r.nullable), u[0]).name, None)


def _malformed(spec: BatchSpec, record: dict[str, Any], u: np.ndarray, _: int) -> Mutation:
    field = TIME_FIELD[spec.stream]
    s: str = record[field]
    date, clock = s[:10], s[11:19]
    variants = (
        s[:-1],  # no zone designator
        s.replace("T", " "),
        f"{date[8:10]}/{date[5:7]}/{date[:4]} {clock}",
        f"{date[:4]}-13-{date[8:10]}T{clock}Z",  # month 13
        f"{date}T{25 + int(u[2] * 5):02d}{s[13:]}",  # hour 25..29
        date,
        s.replace("-", "/", 2),
    )
    return _set(record, field, _pick(variants, u[1]))


def _bad_enum(spec: BatchSpec, record: dict[str, Any], u: np.ndarray, _: int) -> Mutation:
    field = _pick(_rules(spec, lambda r: r.kind == "enum"), u[0]).name
    return _set(record, field, _pick(_BAD_ENUM[field], u[1]))


def _boundary(spec: BatchSpec, record: dict[str, Any], u: np.ndarray, _: int) -> Mutation:
    start, end = to_ms(spec.interval_start), to_ms(spec.interval_end)
    span = end - start
    # before the interval (and past the late horizon, if late data is declared), or at/after
    # its end: for a just-closed interval that is the future
    horizon = late_horizon_ms(spec)
    moment = start - 1 - horizon - int(u[2] * span) if u[1] < 0.5 else end + int(u[2] * span)
    return _set(record, TIME_FIELD[spec.stream], iso_one(moment))


def _wrong_type(rule: Rule, value: Any, u: float) -> Any:
    if rule.kind == "bool":
        return _pick(("true", "false", 1, 0, "yes"), u)
    if rule.kind == "count":
        return str(value) if u < 0.5 else float(value)
    if rule.kind == "timestamp":
        return int(u * 2_000_000_000)
    if rule.kind == "location":
        return "unknown" if value is None else f"{value['lat']},{value['lon']}"
    return int(u * 1_000_000) if u < 0.7 else [value]


def _early_drift_field(spec: BatchSpec) -> tuple[str, ...]:
    """Before a configured drift point, its field is an unknown field: a producer that ships
    the new column before the contract allows it."""
    arrival = spec.arrival
    if arrival is None or arrival.drift is None or arrival.contract_version > 1:
        return ()
    return (arrival.drift.field,)


def _schema(spec: BatchSpec, record: dict[str, Any], u: np.ndarray, _: int) -> Mutation:
    if u[0] < 0.3:  # an unknown extra field, the way upstream schema drift looks
        early = _early_drift_field(spec)
        field = _pick(_EXTRA_FIELDS + early, u[1])
        value = (
            round(float(u[2]) * 120, 1)
            if field == "speed_kmh"
            else round(float(u[2]) * 500_000, 1)
            if early and field == early[0]
            else f"v{int(u[2] * 9) + 1}"
        )
        record[field] = value
        return field, None, json_text(value)
    rule = _pick(RULES[spec.stream], u[1])
    return _set(record, rule.name, _wrong_type(rule, record[rule.name], float(u[2])))


def _out_of_range(spec: BatchSpec, record: dict[str, Any], u: np.ndarray, _: int) -> Mutation:
    rule = _pick(_rules(spec, lambda r: r.kind in ("count", "location", "text")), u[0])
    value = record[rule.name]
    if rule.kind == "count":
        bad = (0, -1 - int(u[2] * 10), 100_001 + int(u[2] * 1e6))
        return _set(record, rule.name, _pick(bad, u[1]))
    if rule.kind == "text":
        return _set(record, rule.name, " ".join([value] * (201 // max(len(value), 1) + 2)))
    lat, lon = (value["lat"], value["lon"]) if value else (0.0, 0.0)
    sign = 1 if u[3] < 0.5 else -1
    if u[1] < 0.5:
        lat = sign * round(90.0001 + float(u[2]) * 10, 5)
    else:
        lon = sign * round(180.0001 + float(u[2]) * 20, 5)
    return _set(record, rule.name, {"lat": lat, "lon": lon})


def _empty(spec: BatchSpec, record: dict[str, Any], u: np.ndarray, _: int) -> Mutation:
    field = _pick(_rules(spec, lambda r: r.kind in _STRING_KINDS), u[0]).name
    return _set(record, field, _pick(("", " ", "   "), u[1]))


def _orphan(spec: BatchSpec, record: dict[str, Any], u: np.ndarray, index: int) -> Mutation:
    # An id from a namespace no company ordinal uses, so it can never appear in silver.
    hi = mix64(spec.seed, TAG_PHANTOM, spec.seq, index, 1).reshape(1)
    lo = mix64(spec.seed, TAG_PHANTOM, spec.seq, index, 2).reshape(1)
    return _set(record, "company_id", uuid_strings(hi, lo)[0])


MUTATORS: dict[Defect, Callable[[BatchSpec, dict[str, Any], np.ndarray, int], Mutation]] = {
    Defect.missing_field: _missing,
    Defect.null_value: _null,
    Defect.malformed_timestamp: _malformed,
    Defect.invalid_enum: _bad_enum,
    Defect.boundary_violation: _boundary,
    Defect.schema_mismatch: _schema,
    Defect.out_of_range: _out_of_range,
    Defect.empty_string: _empty,
    Defect.orphan_reference: _orphan,
}
