"""Silver's regex fast path accepts only what the contract accepts, with the same values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from emugen.contract import Context, Rejection, check, parse
from emugen.generate import build_spec, generate
from emugen.pipeline.fastpath import event_row, match_event
from emugen.pipeline.silver import _event_row, _event_row_sqlite
from emugen.vocabulary import Stream
from tests.audit import known_companies
from tests.conftest import make_settings

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
START, END = AT - timedelta(hours=1), AT


def _contract_row(line: str, ctx: Context, stored_text: bool) -> tuple | None:
    """What silver's contract path makes of one bronze line: its row, or None if rejected."""
    record = parse(line)
    if isinstance(record, Rejection):
        return None
    result = check(Stream.events, record, ctx)
    if isinstance(result, Rejection):
        return None
    if stored_text:
        return _event_row_sqlite(result, "b", 7, record["event_timestamp"])
    return _event_row(result, "b", 7)


def _fast_row(line: str, ctx: Context, stored_text: bool) -> tuple | None:
    groups = match_event(line)
    return None if groups is None else event_row(groups, ctx, stored_text, "b", 7)


@pytest.mark.parametrize("stored_text", [True, False])
def test_every_line_of_a_dirty_batch_gets_the_same_row_from_the_fast_path_as_from_the_contract(
    stored_text,
):
    settings = make_settings(events={"quality": {"rate": 0.6}})
    spec = build_spec(settings, "events", 3, scheduled_at=AT, size=3000, watermark=100)
    batch = generate(spec)
    ctx = Context(spec.interval_start, spec.interval_end, known_companies(batch))
    fast_hits = contract_hits = 0
    for line in batch.lines():
        fast, slow = _fast_row(line, ctx, stored_text), _contract_row(line, ctx, stored_text)
        if fast is not None:
            fast_hits += 1
            assert fast == slow, line
        contract_hits += slow is not None
    # every row the contract accepts is in the layout orjson writes: the fast path takes them
    # all (duplicates too: silver settles those by key), and nothing else
    assert fast_hits == contract_hits and 1000 < fast_hits < 3000


_UUID = st.uuids().map(str)


@st.composite
def event_lines(draw):
    """Event JSON as a feed might send it: clean values, edge values, and other layouts."""
    record = {
        "event_id": draw(_UUID),
        "company_id": draw(_UUID),
        "driver_id": draw(_UUID),
        "truck_id": draw(_UUID),
        "event_type": draw(
            st.sampled_from(["delivered", "start_driving", "stopped_driving", "idle", "Delivered"])
        ),
        "event_timestamp": draw(
            st.one_of(
                st.datetimes(
                    min_value=datetime(2026, 3, 1, 10), max_value=datetime(2026, 3, 1, 13)
                ).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"),
                st.sampled_from(
                    [
                        "2026-03-01T11:59:60.000Z",
                        "2026-02-30T11:00:00.000Z",
                        "2026-03-01T11:00:00Z",
                        "2026-03-01T11:00:00.000000Z",
                    ]
                ),
            )
        ),
        "location": draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {
                        "lat": st.one_of(st.floats(-95, 95), st.integers(-91, 91)),
                        "lon": st.one_of(st.floats(-185, 185), st.integers(-181, 181)),
                    }
                ),
            )
        ),
    }
    text = orjson.dumps(record).decode()
    if draw(st.booleans()):
        return text
    return draw(
        st.sampled_from(
            [
                text.replace(":", ": ", 1),
                text.upper(),
                text + " ",
                text.replace('"lat"', '"lat","lat"', 0),
            ]
        )
    )


@hsettings(max_examples=400, deadline=None)
@given(line=event_lines(), stored_text=st.booleans(), known=st.booleans())
def test_the_fast_path_never_accepts_what_the_contract_rejects_nor_changes_a_value(
    line, stored_text, known
):
    record = parse(line)
    company = record.get("company_id") if isinstance(record, dict) else None
    ctx = Context(START, END, {company} if known else set())
    fast = _fast_row(line, ctx, stored_text)
    if fast is not None:
        assert fast == _contract_row(line, ctx, stored_text)
