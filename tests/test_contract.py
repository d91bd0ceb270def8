"""The data contract: reason codes, their precedence, and no healing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from emugen.contract import Context, Reason, Rejection, check, parse
from emugen.vocabulary import Stream

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
CTX = Context(START, END, known_companies={"6a0c5b4e-2c35-4c31-8a8e-0a6a3bb1f3d1"})
EVENT = {
    "event_id": "1f0c5b4e-2c35-4c31-8a8e-0a6a3bb1f3d1",
    "company_id": "6a0c5b4e-2c35-4c31-8a8e-0a6a3bb1f3d1",
    "driver_id": "2f0c5b4e-2c35-4c31-8a8e-0a6a3bb1f3d1",
    "truck_id": "3f0c5b4e-2c35-4c31-8a8e-0a6a3bb1f3d1",
    "event_type": "delivered",
    "event_timestamp": "2026-01-01T00:00:05.250Z",
    "location": {"lat": 40.1, "lon": -73.5},
}
COMPANY = {
    "company_id": "6a0c5b4e-2c35-4c31-8a8e-0a6a3bb1f3d1",
    "company_name": "Dixon Haulage",
    "region": "US",
    "active": True,
    "onboarded_at": "2026-01-01T00:00:00.000Z",
    "drivers_count": 12,
    "trucks_count": 9,
}


def test_a_clean_event_passes_with_typed_values():
    typed = check(Stream.events, dict(EVENT), CTX)
    assert not isinstance(typed, Rejection)
    assert typed["event_timestamp"] == datetime(2026, 1, 1, 0, 0, 5, 250000, tzinfo=UTC)
    assert typed["location"] == {"lat": 40.1, "lon": -73.5}


def test_a_clean_company_passes_and_a_null_location_is_valid_data():
    assert not isinstance(check(Stream.companies, dict(COMPANY), CTX), Rejection)
    assert not isinstance(check(Stream.events, EVENT | {"location": None}, CTX), Rejection)


CASES = [
    ("an unknown extra field", EVENT | {"speed": 3}, Reason.schema_mismatch, "speed"),
    (
        "a missing field",
        {k: v for k, v in EVENT.items() if k != "truck_id"},
        Reason.missing_field,
        "truck_id",
    ),
    ("a null id", EVENT | {"driver_id": None}, Reason.null_value, "driver_id"),
    ("an id that is a number", EVENT | {"event_id": 5}, Reason.schema_mismatch, "event_id"),
    ("an id that is not a UUID", EVENT | {"event_id": "abc"}, Reason.schema_mismatch, "event_id"),
    ("a blank id", EVENT | {"truck_id": "  "}, Reason.empty_string, "truck_id"),
    ("an unknown event type", EVENT | {"event_type": "idle"}, Reason.invalid_enum, "event_type"),
    (
        "an upper-case event type",
        EVENT | {"event_type": "DELIVERED"},
        Reason.invalid_enum,
        "event_type",
    ),
    (
        "a timestamp without zone",
        EVENT | {"event_timestamp": "2026-01-01T00:00:05"},
        Reason.malformed_timestamp,
        "event_timestamp",
    ),
    (
        "month 13",
        EVENT | {"event_timestamp": "2026-13-01T00:00:05Z"},
        Reason.malformed_timestamp,
        "event_timestamp",
    ),
    (
        "an epoch number as timestamp",
        EVENT | {"event_timestamp": 1767225605},
        Reason.schema_mismatch,
        "event_timestamp",
    ),
    (
        "a time before the interval",
        EVENT | {"event_timestamp": "2025-12-31T23:59:59.999Z"},
        Reason.boundary_violation,
        "event_timestamp",
    ),
    (
        "a time at the interval's end",
        EVENT | {"event_timestamp": "2026-01-01T00:00:10Z"},
        Reason.boundary_violation,
        "event_timestamp",
    ),
    ("latitude 91", EVENT | {"location": {"lat": 91, "lon": 0}}, Reason.out_of_range, "location"),
    ("a location as text", EVENT | {"location": "40,-73"}, Reason.schema_mismatch, "location"),
    (
        "a location with a boolean",
        EVENT | {"location": {"lat": True, "lon": 1.0}},
        Reason.schema_mismatch,
        "location",
    ),
    (
        "an unknown company",
        EVENT | {"company_id": "7a0c5b4e-2c35-4c31-8a8e-0a6a3bb1f3d1"},
        Reason.orphan_reference,
        "company_id",
    ),
]
COMPANY_CASES = [
    ("zero drivers", COMPANY | {"drivers_count": 0}, Reason.out_of_range, "drivers_count"),
    ("a count as text", COMPANY | {"trucks_count": "9"}, Reason.schema_mismatch, "trucks_count"),
    ("a count as a float", COMPANY | {"trucks_count": 9.0}, Reason.schema_mismatch, "trucks_count"),
    ("active as a string", COMPANY | {"active": "true"}, Reason.schema_mismatch, "active"),
    ("active as 1", COMPANY | {"active": 1}, Reason.schema_mismatch, "active"),
    ("an empty name", COMPANY | {"company_name": ""}, Reason.empty_string, "company_name"),
    (
        "a name over 200 characters",
        COMPANY | {"company_name": "x" * 201},
        Reason.out_of_range,
        "company_name",
    ),
    ("region in lower case", COMPANY | {"region": "eu"}, Reason.invalid_enum, "region"),
]


@pytest.mark.parametrize(("what", "record", "reason", "field"), CASES, ids=[c[0] for c in CASES])
def test_an_event_with_a_broken_rule_is_rejected_with_its_reason_and_field(
    what, record, reason, field
):
    result = check(Stream.events, record, CTX)
    assert isinstance(result, Rejection), what
    assert (result.reason, result.field) == (reason, field)
    assert result.detail


@pytest.mark.parametrize(
    ("what", "record", "reason", "field"), COMPANY_CASES, ids=[c[0] for c in COMPANY_CASES]
)
def test_a_company_with_a_broken_rule_is_rejected_with_its_reason_and_field(
    what, record, reason, field
):
    result = check(Stream.companies, record, CTX)
    assert isinstance(result, Rejection)
    assert (result.reason, result.field) == (reason, field)


def test_the_reference_check_is_skipped_without_a_company_set():
    ctx = Context(START, END, known_companies=None)
    orphan = EVENT | {"company_id": "7a0c5b4e-2c35-4c31-8a8e-0a6a3bb1f3d1"}
    assert not isinstance(check(Stream.events, orphan, ctx), Rejection)


@pytest.mark.parametrize("text", ["{", "[1, 2]", '"just a string"', "null"])
def test_text_that_is_not_a_json_object_is_unparseable(text):
    result = parse(text)
    assert isinstance(result, Rejection) and result.reason is Reason.unparseable


def test_the_contract_never_heals_a_record():
    record = EVENT | {"event_type": "Delivered"}
    before = dict(record)
    check(Stream.events, record, CTX)
    assert record == before


def test_the_fast_path_and_the_rule_table_agree_on_every_generated_record():
    from emugen.contract import _explain
    from emugen.generate import build_spec, generate
    from tests.audit import known_companies
    from tests.conftest import make_settings

    settings = make_settings(
        companies={"quality": {"rate": 0.5}}, events={"quality": {"rate": 0.5}}
    )
    compared = 0
    for stream in Stream:
        for seq in range(1, 40):
            batch = generate(
                build_spec(settings, stream, seq, size=40, watermark=30, first_ordinal=seq * 40)
            )
            known = known_companies(batch) if stream is Stream.events else None
            ctx = Context(batch.spec.interval_start, batch.spec.interval_end, known)
            for line in batch.lines():
                record = parse(line)
                assert check(stream, record, ctx) == _explain(stream, record, ctx)
                compared += 1
    assert compared > 3000
