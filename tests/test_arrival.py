"""Arrival conditions: their config, and their generation as pure functions of the spec."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from emugen.errors import ConfigError
from emugen.generate import BatchSpec, build_spec, generate
from emugen.settings import parse_settings
from emugen.vocabulary import Defect, to_ms
from tests.conftest import make_settings

ALL_ON = {
    "late": {"rate": 0.2, "max_lateness": "PT30S"},
    "out_of_order": True,
    "redelivered": {"rate": 0.2, "max_age": 3},
    "delayed": {"rate": 0.5, "max_delay": 2},
    "drift": {"from_seq": 3, "field": "odometer_km"},
}


def arrival_settings(seed: int = 20261207, **arrival: object):
    return make_settings(seed=seed, events={"quality": {"rate": 0.2}, "arrival": arrival or ALL_ON})


def run_of(settings, last: int, size: int | None = None) -> list[BatchSpec]:
    """The specs of batches 1..last, each carrying the specs before it (as bronze builds them)."""
    specs: list[BatchSpec] = []
    for seq in range(1, last + 1):
        specs.append(
            build_spec(settings, "events", seq, watermark=30, size=size, sources=tuple(specs))
        )
    return specs


def digest(batch) -> str:
    h = hashlib.sha256()
    for line in batch.lines():
        h.update(line.encode() + b"\n")
    for t in batch.truth:
        h.update(repr((t.row_no, t.defect.value, t.field, t.original, t.injected)).encode())
    for a in batch.arrivals:
        h.update(repr(a).encode())
    h.update(
        repr((batch.delay, batch.spec.arrival and batch.spec.arrival.contract_version)).encode()
    )
    return h.hexdigest()


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arrival", "names"),
    [
        ({"late": {"rate": 0.1, "max_lateness": -5}}, r"events\.arrival\.late\.max_lateness: .*-5"),
        (
            {"late": {"rate": 1.5, "max_lateness": "PT30S"}},
            r"events\.arrival\.late\.rate: got 1\.5",
        ),
        ({"redelivered": {"rate": 2, "max_age": 3}}, r"events\.arrival\.redelivered\.rate: got 2"),
        ({"redelivered": {"rate": 0.1, "max_age": 0}}, r"events\.arrival\.redelivered\.max_age"),
        ({"delayed": {"rate": -0.1, "max_delay": 2}}, r"events\.arrival\.delayed\.rate: got -0\.1"),
        ({"drift": {"from_seq": "six"}}, r"events\.arrival\.drift\.from_seq: got 'six'"),
        ({"drift": {"from_seq": 6, "field": "event_id"}}, r"events\.arrival\.drift\.field: got "),
        ({"drift": {"from_seq": 6, "field": "speed_kmh"}}, r"schema_mismatch defect"),
        ({"lateness": {}}, r"events\.arrival\.lateness: unknown key; allowed here: late, "),
    ],
)
def test_a_bad_arrival_condition_is_refused_naming_its_field(arrival, names):
    with pytest.raises(ConfigError, match=names):
        make_settings(events={"arrival": arrival})


def test_a_max_lateness_beyond_the_retention_is_refused_naming_both_fields():
    with pytest.raises(
        ConfigError,
        match=r"\n  - events\.arrival\.late\.max_lateness: got "
        r"7200 seconds, beyond fleet\.retain_batches_for",
    ):
        make_settings(
            events={"arrival": {"late": {"rate": 0.1, "max_lateness": "PT2H"}}},
            fleet={"retain_batches_for": "PT1H"},
        )


def test_every_condition_is_off_by_default_and_leaves_the_fingerprint_alone():
    plain = parse_settings({}, env=False)
    assert plain.events.arrival.off
    spelled = parse_settings({"events": {"arrival": {"out_of_order": False}}}, env=False)
    assert spelled.fingerprint() == plain.fingerprint()
    on = parse_settings({"events": {"arrival": {"out_of_order": True}}}, env=False)
    assert on.fingerprint() != plain.fingerprint()


def test_a_spec_without_arrival_conditions_serialises_without_an_arrival_key():
    spec = build_spec(make_settings(), "events", 3, watermark=10)
    assert spec.arrival is None and "arrival" not in spec.model_dump_json()
    on = build_spec(arrival_settings(), "events", 3, watermark=10)
    assert BatchSpec.model_validate_json(on.model_dump_json()) == on
    assert on.arrival is not None and on.arrival.late is not None
    assert on.arrival.late.max_lateness_ms == 30_000


# -- generation -------------------------------------------------------------------------------

GOLDEN = {  # batch seq of a run with every condition on -> its bytes, truth, ledger and delay
    4: "8702b99d9789bc2592e0e20ab9486e6c6138e66de8fa39e29ea9029e5846eb5f",
    7: "edf75296e6459737be7f366708581c8278c5c97e10d7a8a546b90fefab634c20",
}


@pytest.mark.parametrize("seq", list(GOLDEN))
def test_golden_hashes_pin_the_output_with_every_condition_on(seq):
    specs = run_of(arrival_settings(), seq)
    assert digest(generate(specs[-1])) == GOLDEN[seq]


def test_the_same_arrival_spec_gives_identical_bytes_and_ledger_in_another_process():
    spec = run_of(arrival_settings(), 5, size=200)[-1]
    code = (
        "import sys; from emugen.generate import BatchSpec, generate; "
        "from tests.test_arrival import digest; "
        "print(digest(generate(BatchSpec.model_validate_json(sys.stdin.read()))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=spec.model_dump_json(),
        text=True,
        capture_output=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "TZ": "Asia/Kolkata", "LC_ALL": "C", "PYTHONPATH": "."},
    ).stdout.strip()
    assert out == digest(generate(spec))


def test_a_late_record_lies_before_its_interval_by_its_recorded_lateness_and_is_clean():
    spec = run_of(arrival_settings(), 4, size=300)[-1]
    batch = generate(spec)
    late = [a for a in batch.arrivals if a.condition == "late"]
    start = to_ms(spec.interval_start)
    assert 40 <= len(late) <= 80  # 0.2 of 300, give or take
    defective = {t.row_no for t in batch.truth}
    for a in late:
        stamp = batch.records[a.row_no]["event_timestamp"]
        assert a.row_no not in defective
        assert 1 <= a.lateness_ms <= 30_000 and a.event_ms == start - a.lateness_ms
        assert to_ms_text(stamp) == a.event_ms


def to_ms_text(stamp: str) -> int:
    from datetime import datetime

    return to_ms(datetime.fromisoformat(stamp.replace("Z", "+00:00")))


def test_a_redelivered_record_is_a_byte_copy_of_a_clean_row_of_a_batch_up_to_max_age_back():
    specs = run_of(arrival_settings(), 6, size=100)
    batch = generate(specs[-1])
    copies = [a for a in batch.arrivals if a.condition == "redelivered"]
    assert copies
    for a in copies:
        assert a.original_seq is not None and a.original_row_no is not None
        assert 1 <= specs[-1].seq - a.original_seq <= 3
        source = generate(specs[a.original_seq - 1])
        assert source.lines()[a.original_row_no] == batch.lines()[a.row_no]
        assert a.original_row_no not in {t.row_no for t in source.truth}
    assert {a.row_no for a in copies} == set(
        range(len(batch.records) - len(copies), len(batch.records))
    )


def test_out_of_order_shuffles_the_rows_and_off_keeps_generation_order():
    ordered = generate(run_of(arrival_settings(late=ALL_ON["late"]), 3, size=200)[-1])
    shuffled = generate(
        run_of(arrival_settings(late=ALL_ON["late"], out_of_order=True), 3, size=200)[-1]
    )
    assert sorted(ordered.lines()) == sorted(shuffled.lines())
    assert ordered.lines() != shuffled.lines()
    late_rows = {a.row_no for a in ordered.arrivals}
    defective = {t.row_no for t in ordered.truth}
    stamps = [
        r["event_timestamp"]
        for i, r in enumerate(ordered.records)
        if i not in late_rows | defective
    ]
    assert stamps == sorted(stamps)  # on-time clean records: event-time order
    for t in shuffled.truth:  # the truth follows its rows; a duplicate stays after its original
        if t.defect is Defect.duplicate:
            first = int(t.original.split(":")[1].rstrip("}"))
            assert first < t.row_no
            assert shuffled.lines()[first] == shuffled.lines()[t.row_no]


def test_drift_adds_the_field_from_its_seq_and_is_a_schema_mismatch_only_before_it():
    only_schema = {d.value: 0 for d in Defect if d is not Defect.schema_mismatch}
    settings = make_settings(
        seed=5,
        events={
            "quality": {"rate": 0.6, "defects": only_schema},
            "arrival": {"drift": {"from_seq": 3}},
        },
    )
    specs = run_of(settings, 4, size=200)
    before, after = generate(specs[1]), generate(specs[3])
    assert [s.arrival.contract_version for s in specs] == [1, 1, 2, 2]
    early = [t for t in before.truth if t.field == "odometer_km"]
    assert early and all(t.defect is Defect.schema_mismatch for t in early)
    assert all("odometer_km" in r for r in after.records)
    assert not [t for t in after.truth if t.field == "odometer_km"]


def test_a_delayed_batch_waits_behind_one_to_max_delay_later_batches():
    delays = [
        generate(s).delay for s in run_of(arrival_settings(delayed=ALL_ON["delayed"]), 40, size=5)
    ]
    assert set(delays) == {0, 1, 2}
    assert 10 <= sum(1 for d in delays if d) <= 30


def test_turning_one_condition_on_moves_no_draw_of_another():
    late = generate(run_of(arrival_settings(late=ALL_ON["late"]), 3, size=100)[-1])
    both = generate(
        run_of(arrival_settings(late=ALL_ON["late"], delayed=ALL_ON["delayed"]), 3, size=100)[-1]
    )
    assert late.lines() == both.lines() and late.arrivals == both.arrivals


@hsettings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    seq=st.integers(1, 6),
    size=st.integers(0, 60),
    rate=st.floats(0, 1),
    lateness_ms=st.integers(1, 600_000),
)
def test_arrival_generation_is_deterministic_and_within_its_bounds(
    seed, seq, size, rate, lateness_ms
):
    settings = arrival_settings(
        seed=seed,
        late={"rate": rate, "max_lateness": lateness_ms / 1000},
        redelivered={"rate": rate, "max_age": 2},
        out_of_order=True,
        delayed={"rate": rate, "max_delay": 3},
    )
    spec = run_of(settings, seq, size=size)[-1]
    first, again = generate(spec), generate(spec)
    assert digest(first) == digest(again)
    own = len(first.records) - sum(a.condition == "redelivered" for a in first.arrivals)
    assert own == size
    late = [a for a in first.arrivals if a.condition == "late"]
    assert len(late) <= rate * size + 1
    assert all(1 <= a.lateness_ms <= lateness_ms for a in late)
    assert 0 <= first.delay <= 3 and (rate > 0 or first.delay == 0)
    assert all(
        1 <= seq - a.original_seq <= 2 for a in first.arrivals if a.condition == "redelivered"
    )


def test_timedelta_lateness_is_kept_to_the_millisecond_in_the_spec():
    settings = arrival_settings(late={"rate": 0.1, "max_lateness": timedelta(seconds=1.234)})
    spec = build_spec(settings, "events", 1, watermark=5)
    assert spec.arrival is not None and spec.arrival.late is not None
    assert spec.arrival.late.max_lateness_ms == 1234
