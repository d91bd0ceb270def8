"""Excluded companies by reference: a spec stays small, old specs replay, a plan stays small."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from emugen.backfill.plan import plan_backfill
from emugen.db.models import BatchRow
from emugen.db.session import read_session, write_session
from emugen.errors import ExclusionsUnknown
from emugen.generate import BatchSpec, build_spec, draft, generate
from emugen.generate import exclusions as ledger
from emugen.generate.exclusions import Exclusions, remember
from emugen.pipeline.bronze import generate_and_land, land_bronze
from emugen.pipeline.replay import replay
from emugen.pipeline.runner import refine_and_build
from emugen.vocabulary import Mode, Stream
from tests.conftest import make_settings
from tests.test_generate import digest

START = datetime(2026, 1, 1, tzinfo=UTC)
SPEC_BOUND = 1_500  # bytes of JSON: an event spec without its list is ~900

# Event specs as the emugen before this change stored them (a plain list of ordinals), with
# the sha256 of what they generated then (tests.test_generate.digest).
OLD_SPECS = {
    '{"generator_version":1,"seed":20261125,"stream":"events","seq":3,"mode":"emulated",'
    '"interval_start":"2026-01-01T00:00:20Z","interval_end":"2026-01-01T00:00:30Z",'
    '"size":{"kind":"uniform","min":5,"max":20},"first_ordinal":0,"watermark":40,'
    '"excluded_ordinals":[2,3,11,29],"company_shape":{"drivers_min":3,"drivers_max":40,'
    '"active_rate":0.95},"event_types":{"start_driving":0.4,"stopped_driving":0.35,'
    '"delivered":0.25},"location_missing_rate":0.05,"quality_rate":0.2,"quality_weights":'
    '{"missing_field":1.0,"null_value":1.0,"malformed_timestamp":1.0,"invalid_enum":1.0,'
    '"duplicate":1.0,"boundary_violation":1.0,"schema_mismatch":1.0,"out_of_range":1.0,'
    '"empty_string":1.0,"orphan_reference":1.0}}': (
        "94e65802d07aedf3da25b90b46b257dc5bfab53394802c169519e41721cff3b1"
    ),
    '{"generator_version":1,"seed":20261125,"stream":"events","seq":2,"mode":"production",'
    '"interval_start":"2026-01-01T00:15:00Z","interval_end":"2026-01-01T00:30:00Z",'
    '"size":{"kind":"poisson","per_driver":0.05},"first_ordinal":0,"watermark":40,'
    '"excluded_ordinals":[2,3,11,29],"company_shape":{"drivers_min":3,"drivers_max":40,'
    '"active_rate":0.95},"event_types":{"start_driving":0.4,"stopped_driving":0.35,'
    '"delivered":0.25},"location_missing_rate":0.05,"quality_rate":0.2,"quality_weights":'
    '{"missing_field":1.0,"null_value":1.0,"malformed_timestamp":1.0,"invalid_enum":1.0,'
    '"duplicate":1.0,"boundary_violation":1.0,"schema_mismatch":1.0,"out_of_range":1.0,'
    '"empty_string":1.0,"orphan_reference":1.0}}': (
        "e3b17d7dcff6d60255c042a7ad254e6ae4a4f367de459eb09c67c5398a467b77"
    ),
}


def rejecting_settings(**overrides: object):
    """Production companies of which silver rejects many; few events, so plans are quick."""
    return make_settings(
        mode="production",
        companies={
            "production": {"interval": "PT1H", "min_batch_size": 100, "max_batch_size": 100},
            "quality": {"rate": 0.6},
        },
        events={"production": {"interval": "PT15M", "events_per_driver": 0.001}},
        **overrides,
    )


def forget_loaded_lists(monkeypatch) -> None:
    """As a fresh process: no exclusion list loaded, none walked from a store."""
    from emugen.pipeline import watermark

    monkeypatch.setattr(ledger, "_KNOWN", {})
    monkeypatch.setattr(watermark, "_LOADED", {})


@pytest.mark.parametrize("hours", [24, 96, 240])
def test_an_event_spec_stays_small_however_many_companies_were_rejected_before_it(hours):
    plan = plan_backfill(
        rejecting_settings(),
        START,
        START + timedelta(hours=hours),
        (Stream.companies, Stream.events),
    )
    last = plan.ticks[len(plan.ticks) - 2]  # the last event tick (a company tick ends it)
    assert last.stream is Stream.events
    spec = last.spec
    assert spec.exclusions is not None and spec.exclusions.count > 4 * hours  # many rejected
    assert len(spec.model_dump_json()) < SPEC_BOUND
    assert len(last.message("fp")["spec"]) < SPEC_BOUND  # what each Celery message carries


@pytest.mark.parametrize("old", list(OLD_SPECS), ids=["emulated", "production"])
def test_a_spec_stored_with_a_plain_list_generates_its_pinned_bytes_as_does_its_reference(old):
    spec = BatchSpec.model_validate_json(old)
    assert spec.exclusions is None and spec.excluded_ordinals == (2, 3, 11, 29)
    assert digest(generate(spec)) == OLD_SPECS[old]
    import numpy as np

    reference = remember(np.array([2, 3, 11, 29], dtype=np.int64))
    by_reference = spec.model_copy(update={"excluded_ordinals": (), "exclusions": reference})
    assert len(by_reference.model_dump_json()) < len(old) + 100  # the reference: ~75 bytes
    assert digest(generate(by_reference)) == OLD_SPECS[old]


def test_a_spec_naming_a_list_nobody_loaded_is_refused_in_one_line_naming_replay():
    settings = make_settings()
    spec = build_spec(
        settings, "events", 4, watermark=40, exclusions=Exclusions(count=3, digest="0" * 32)
    )
    with pytest.raises(ExclusionsUnknown, match="names 3 excluded companies.*emugen replay"):
        draft(spec)
    with pytest.raises(ValueError, match="not both"):
        BatchSpec.model_validate({**spec.model_dump(), "excluded_ordinals": (1,)})


def test_a_live_event_spec_is_small_and_replays_from_the_store_in_a_fresh_process(
    engine, monkeypatch
):
    settings = rejecting_settings()
    for hour in range(12):
        landed = generate_and_land(
            engine, settings, Stream.companies, START + timedelta(hours=hour), mode=Mode.production
        )
        refine_and_build(engine, landed.batch_id)
    events = generate_and_land(
        engine, settings, Stream.events, START + timedelta(hours=12), mode=Mode.production, size=300
    )
    with read_session(engine) as session:
        stored = session.scalar(select(BatchRow.spec).where(BatchRow.batch_id == events.batch_id))
    spec = BatchSpec.model_validate_json(stored)
    assert spec.exclusions is not None and spec.exclusions.count > 48
    assert len(stored) < SPEC_BOUND
    forget_loaded_lists(monkeypatch)
    with read_session(engine) as session:
        report = replay(session, events.batch_id)
    assert report.identical, report.summary()


def test_an_event_batch_stored_with_a_plain_list_replays_identically(engine, monkeypatch):
    spec = BatchSpec.model_validate_json(next(iter(OLD_SPECS)))
    with write_session(engine) as session:
        land_bronze(
            session, draft(spec), fingerprint="old", scheduled_at=spec.interval_end, generate_ms=0.0
        )
    forget_loaded_lists(monkeypatch)
    with read_session(engine) as session:
        report = replay(session, "events-000000003")
    assert report.identical, report.summary()


def test_a_store_whose_rejections_differ_from_the_spec_is_refused(engine, monkeypatch):
    settings = rejecting_settings()
    landed = generate_and_land(engine, settings, Stream.companies, START, mode=Mode.production)
    refine_and_build(engine, landed.batch_id)
    with read_session(engine) as session:
        watermark = session.get(BatchRow, landed.batch_id).ordinal_count
    import numpy as np

    other = remember(np.array([0, 1], dtype=np.int64))  # not what silver rejected
    spec = build_spec(
        settings, "events", 5, watermark=watermark, exclusions=other, mode=Mode.production
    )
    forget_loaded_lists(monkeypatch)
    from emugen.pipeline.watermark import load_exclusions

    with (
        read_session(engine) as session,
        pytest.raises(ExclusionsUnknown, match="this store's company batches"),
    ):
        load_exclusions(session, spec)


RSS = """
import resource, sys
from emugen.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def _dry_run_peak_kb(config: Path, days: float) -> int:
    end = START + timedelta(days=days)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            RSS,
            "backfill",
            "--from",
            START.isoformat(),
            "--to",
            end.isoformat(),
            "--dry-run",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return int(done.stderr.strip().splitlines()[-1])


def test_a_long_dry_run_peaks_no_higher_than_a_two_hour_one(tmp_path):
    config = tmp_path / "emugen.yaml"
    config.write_text(
        "mode: production\nseed: 7\nclock: {kind: simulated, start: 2026-01-01T00:00:00Z}\n"
        f"database_url: sqlite:///{tmp_path / 'unused.db'}\n"
        "companies:\n  production: {interval: PT1H, min_batch_size: 100, max_batch_size: 100}\n"
        "  quality: {rate: 0.6}\n"
        "events:\n  production: {interval: PT15M, events_per_driver: 0.0001}\n"
        "landing: {enabled: false}\n"
    )
    short = _dry_run_peak_kb(config, 2 / 24)
    long = _dry_run_peak_kb(config, 14)  # 2,016 ticks; ~16,000 companies rejected by the end
    # a list per spec grew this by ~45 MB (quadratic in the range); columns and a reference
    # per tick add well under a megabyte
    assert long - short < 20_000, f"peak RSS {short:,} KB for 2 hours, {long:,} KB for 14 days"


def test_the_plans_expected_records_are_what_each_event_tick_generates():
    plan = plan_backfill(
        rejecting_settings(), START, START + timedelta(hours=30), (Stream.companies, Stream.events)
    )
    checked = 0
    for tick in plan.ticks:
        if tick.stream is Stream.events and tick.records:
            assert len(draft(tick.spec)) == tick.records
            checked += 1
    assert checked > 50


def test_a_referenced_list_is_the_sha256_of_its_ordinals():
    import numpy as np

    ordinals = np.array([5, 9, 40], dtype=np.int64)
    assert (
        remember(ordinals).digest
        == hashlib.sha256(ordinals.astype("<i8").tobytes()).hexdigest()[:32]
    )


@pytest.mark.parametrize("rate", [0.05, 0.6, 1.0])
def test_settling_a_company_batch_rejects_what_checking_every_line_rejects(rate):
    from emugen.backfill.plan import settle_companies
    from emugen.contract import Context, Rejection, check, parse

    settings = make_settings(mode="production", seed=11, companies={"quality": {"rate": rate}})
    first = 0
    for seq in range(1, 41):
        spec = build_spec(settings, "companies", seq, mode=Mode.production, first_ordinal=first)
        settled = settle_companies(spec)
        planned, ctx = draft(spec), Context(spec.interval_start, spec.interval_end, None)
        kept = set()
        for lines in planned.line_chunks():
            for line in lines:
                record = parse(line)
                result = (
                    record
                    if isinstance(record, Rejection)
                    else check(Stream.companies, record, ctx)
                )
                if not isinstance(result, Rejection):
                    kept.add(result["company_id"])
        ids = planned.layout.columns.traits.company_ids
        assert settled.excluded == tuple(first + i for i, c in enumerate(ids) if c not in kept)
        assert settled.records == len(planned)
        first += settled.ordinals


def test_a_worker_that_never_saw_the_plan_loads_each_ticks_rejections_from_its_store(
    engine, monkeypatch
):
    from emugen.backfill.tick import TickMessage, run_tick

    settings = rejecting_settings()
    plan = plan_backfill(
        settings, START, START + timedelta(hours=4), (Stream.companies, Stream.events)
    )
    messages = [TickMessage.parse(t.message("fp")) for t in plan.ticks]
    assert any(m.spec.exclusions and m.spec.exclusions.count for m in messages)
    forget_loaded_lists(monkeypatch)  # as a worker process: only the store to read them from
    for tick in messages:
        assert run_tick(engine, plan.settings.landing, tick, worker="w") == "gold"
    forget_loaded_lists(monkeypatch)
    with read_session(engine) as session:
        last = max(t.batch_id for t in plan.ticks if t.stream is Stream.events)
        assert replay(session, last).identical
