"""The shared words: defect applicability and the epoch-millisecond helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from emugen.vocabulary import DEFECTS_FOR, EPOCH, Defect, Stream, iso_ms, iso_one, to_ms


def test_companies_cannot_carry_an_orphan_reference_but_events_carry_every_defect() -> None:
    assert Defect.orphan_reference not in DEFECTS_FOR[Stream.companies]
    assert set(DEFECTS_FOR[Stream.companies]) == set(Defect) - {Defect.orphan_reference}
    assert DEFECTS_FOR[Stream.events] == tuple(Defect)


def test_a_moment_is_whole_milliseconds_since_the_epoch() -> None:
    moment = datetime(2026, 1, 1, 0, 0, 1, 234_999, tzinfo=UTC)
    assert to_ms(EPOCH) == 0
    assert to_ms(moment) == 1_767_225_601_234  # microseconds below a millisecond drop
    assert to_ms(EPOCH - timedelta(milliseconds=1)) == -1


def test_epoch_milliseconds_format_as_utc_text_with_a_z() -> None:
    stamps = np.array([0, 1_767_225_601_234])
    assert iso_ms(stamps) == ["1970-01-01T00:00:00.000Z", "2026-01-01T00:00:01.234Z"]
    assert iso_one(1_767_225_601_234) == "2026-01-01T00:00:01.234Z"
    assert iso_ms(np.array([], dtype=np.int64)) == []


def test_formatting_then_parsing_gives_the_same_milliseconds_back() -> None:
    for value in (0, 999, 1_767_225_601_234, 253_402_300_799_999):
        parsed = datetime.fromisoformat(iso_one(value).replace("Z", "+00:00"))
        assert to_ms(parsed) == value
