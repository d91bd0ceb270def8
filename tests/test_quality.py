"""Quality injection: exact rates, one defect per record, every defect caught by the contract."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from emugen.contract import KEY_FIELD, RULES
from emugen.generate import build_spec, generate
from emugen.vocabulary import DEFECTS_FOR, Defect, Stream
from tests.audit import Verdict, audit
from tests.conftest import make_settings


def quality(stream: str, **q) -> dict:
    return {stream: {"quality": q}}


def batches(stream: str, count: int, size: int = 50, **q):
    settings = make_settings(**quality(stream, **q))
    for seq in range(1, count + 1):
        yield generate(
            build_spec(
                settings, stream, seq, size=size, watermark=60, first_ordinal=(seq - 1) * size
            )
        )


@pytest.mark.parametrize("stream", ["companies", "events"])
def test_every_injected_record_fails_the_contract_with_exactly_its_expected_reason(stream):
    verdict = Verdict()
    injected = 0
    for batch in batches(stream, 120, size=40, rate=0.3):
        injected += len(batch.truth)
        audit(batch, verdict)
    assert verdict.problems == {}
    assert verdict.caught == injected > 1000
    assert verdict.clean_passed > 2000


@pytest.mark.parametrize(
    ("stream", "defect"),
    [(s.value, d) for s in Stream for d in DEFECTS_FOR[s]],
    ids=lambda v: getattr(v, "value", v),
)
def test_each_defect_type_alone_is_caught_with_its_own_reason(stream, defect):
    weights = {d.value: (1 if d is defect else 0) for d in DEFECTS_FOR[Stream(stream)]}
    verdict, injected = Verdict(), 0
    for batch in batches(stream, 30, size=30, rate=0.4, defects=weights):
        assert {t.defect for t in batch.truth} <= {defect}
        injected += len(batch.truth)
        audit(batch, verdict)
    assert verdict.problems == {}
    assert verdict.caught == injected > 100


@pytest.mark.parametrize("stream", ["companies", "events"])
def test_the_defective_fraction_is_within_one_point_of_the_rate_over_2000_records(stream):
    records = defective = 0
    for batch in batches(stream, 200, size=12, rate=0.15):
        records += len(batch.records)
        defective += len(batch.truth)
    assert records >= 2000
    assert abs(defective / records - 0.15) <= 0.01


@pytest.mark.parametrize("stream", ["companies", "events"])
def test_rate_zero_gives_clean_batches(stream):
    for batch in batches(stream, 30, rate=0.0):
        assert batch.truth == []
        assert audit(batch).clean_passed == len(batch.records)


@pytest.mark.parametrize("stream", ["companies", "events"])
def test_rate_one_makes_every_record_defective(stream):
    for batch in batches(stream, 30, rate=1.0):
        assert sorted(t.row_no for t in batch.truth) == list(range(len(batch.records)))
        # no clean record is left to copy, so duplicates were redrawn as other types
        assert Defect.duplicate not in {t.defect for t in batch.truth}
        assert audit(batch).problems == {}


@pytest.mark.parametrize("stream", ["companies", "events"])
def test_a_switched_off_defect_type_never_appears(stream):
    off = [Defect.duplicate.value, Defect.missing_field.value]
    seen = set()
    for batch in batches(stream, 60, rate=0.5, disabled=off):
        seen |= {t.defect.value for t in batch.truth}
    assert not seen & set(off)
    assert len(seen) >= 5


def test_a_weight_of_zero_switches_a_type_off_and_weights_shape_the_mix():
    counts = {Defect.null_value: 0, Defect.invalid_enum: 0}
    for batch in batches(
        "events",
        100,
        rate=0.5,
        defects={d.value: 0 for d in DEFECTS_FOR[Stream.events]}
        | {"null_value": 3, "invalid_enum": 1},
    ):
        for t in batch.truth:
            counts[t.defect] += 1
    share = counts[Defect.null_value] / sum(counts.values())
    assert 0.70 < share < 0.80


def test_duplicates_count_toward_the_batch_size_and_copy_an_earlier_clean_row():
    settings = make_settings(
        events={
            "quality": {
                "rate": 0.4,
                "defects": {
                    d.value: (1 if d is Defect.duplicate else 0) for d in DEFECTS_FOR[Stream.events]
                },
            }
        }
    )
    for seq in range(1, 40):
        batch = generate(build_spec(settings, "events", seq, watermark=20))
        assert 5 <= len(batch.records) <= 20
        lines = batch.lines()
        for t in batch.truth:
            original = orjson.loads(t.original)["row_no"]
            assert original < t.row_no
            assert lines[original] == lines[t.row_no]
            assert original not in {x.row_no for x in batch.truth}


@pytest.mark.parametrize("stream", ["companies", "events"])
def test_dirty_rows_look_like_clean_rows_with_no_marker_in_the_payload(stream):
    names = {r.name for r in RULES[Stream(stream)]}
    for batch in batches(stream, 40, rate=0.5):
        truth_rows = {t.row_no for t in batch.truth}
        lines = batch.lines()
        for row_no, line in enumerate(lines):
            assert line == orjson.dumps(orjson.loads(line)).decode()  # same formatting
            extra = set(orjson.loads(line)) - names
            if row_no not in truth_rows:
                assert not extra
        # defects are spread through the batch, not gathered at its end
    positions = [t.row_no / len(b.records) for b in batches(stream, 40, rate=0.3) for t in b.truth]
    assert 0.35 < sum(positions) / len(positions) < 0.65


@hsettings(max_examples=50, deadline=None)
@given(
    rate=st.floats(0, 1),
    seq=st.integers(1, 10**6),
    size=st.integers(0, 80),
    stream=st.sampled_from(["companies", "events"]),
)
def test_any_rate_and_size_give_one_defect_per_defective_row_all_caught(rate, seq, size, stream):
    settings = make_settings(**quality(stream, rate=rate))
    batch = generate(
        build_spec(settings, stream, seq, size=size, watermark=15, first_ordinal=seq * 100)
    )
    rows = [t.row_no for t in batch.truth]
    assert len(rows) == len(set(rows))
    assert len(batch.records) == size
    assert abs(len(rows) - rate * size) < 1 or rows == list(range(size))
    verdict = audit(batch)
    assert verdict.problems == {}
    assert verdict.caught + verdict.clean_passed == size


def test_the_truth_records_what_each_field_held_before_and_after():
    for batch in batches("companies", 20, rate=0.5):
        for t in batch.truth:
            row = orjson.loads(batch.lines()[t.row_no])
            if t.defect is Defect.missing_field:
                assert t.field not in row and t.injected is None and t.original is not None
            elif t.defect is Defect.duplicate:
                assert t.field == KEY_FIELD[Stream.companies]
            else:
                assert orjson.loads(t.injected) == row[t.field]
                assert t.original != t.injected
