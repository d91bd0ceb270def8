"""The medallion store on SQLite and PostgreSQL: exact reconciliation, idempotence, atomicity."""

from __future__ import annotations

import json
import multiprocessing
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from emugen.db.models import (
    BatchRow,
    BronzeRecord,
    InjectedDefect,
    Quarantine,
    SilverCompany,
    SilverEvent,
)
from emugen.db.session import read_session, write_session
from emugen.errors import StageOrderError
from emugen.pipeline import bronze as bronze_module
from emugen.pipeline.bronze import generate_and_land
from emugen.pipeline.gold import build_gold
from emugen.pipeline.reconcile import reconcile
from emugen.pipeline.recovery import mark_failed
from emugen.pipeline.replay import replay
from emugen.pipeline.runner import TickClock, refine_and_build, run_pipeline
from emugen.pipeline.silver import refine_silver
from emugen.vocabulary import DEFECTS_FOR, Stream
from tests.conftest import make_settings
from tests.store_helpers import gold_from_scratch, gold_tables, snapshot

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
ALL_DEFECTS = {s: {d.value: 1 for d in DEFECTS_FOR[s]} for s in Stream}


def dirty_settings(rate: float = 0.3, size: int = 20):
    return make_settings(
        clock={"kind": "wall"},
        companies={
            "emulated": {"min_batch_size": size, "max_batch_size": size},
            "quality": {"rate": rate, "defects": ALL_DEFECTS[Stream.companies]},
        },
        events={
            "emulated": {"min_batch_size": size, "max_batch_size": size},
            "quality": {"rate": rate, "defects": ALL_DEFECTS[Stream.events]},
        },
    )


def tick(n: int) -> datetime:
    return T0 + timedelta(seconds=10 * n)


def land_round(engine, settings, n: int, size: int | None = None) -> list[str]:
    ids = []
    for stream in (Stream.companies, Stream.events):
        landed = generate_and_land(engine, settings, stream, tick(n), size=size)
        refine_and_build(engine, landed.batch_id)
        ids.append(landed.batch_id)
    return ids


def test_every_defect_type_at_rate_030_over_10000_records_per_entity_is_caught_exactly(engine):
    settings = dirty_settings(rate=0.3, size=1000)
    for n in range(10):
        land_round(engine, settings, n)
    with read_session(engine) as session:
        totals = dict(
            session.execute(
                select(BatchRow.stream, func.sum(BatchRow.record_count)).group_by(BatchRow.stream)
            ).all()
        )
        result = reconcile(session)
    assert totals["companies"] >= 10_000 and totals["events"] >= 10_000
    assert result.injected >= 6_000
    assert result.caught == result.injected
    assert result.caught_pct == 100.0 and result.missed == 0
    assert result.false_alarms == {}
    assert set(result.by_defect) == {d.value for d in DEFECTS_FOR[Stream.events]}
    assert gold_tables(engine) == gold_from_scratch(engine, 60)


def test_gold_equals_a_direct_recomputation_from_silver_across_many_small_batches(engine):
    settings = dirty_settings(rate=0.1, size=15)
    for n in range(12):
        land_round(engine, settings, n)
    assert gold_tables(engine) == gold_from_scratch(engine, 60)
    companies, regions = gold_tables(engine)
    assert companies and regions
    with read_session(engine) as session:
        delivered = session.scalar(
            select(func.count())
            .select_from(SilverEvent)
            .where(SilverEvent.event_type == "delivered")
        )
    assert sum(r[6] for r in regions) == delivered  # every delivery counted once


def test_each_stage_run_twice_leaves_identical_tables(engine):
    settings = dirty_settings()
    landed = generate_and_land(engine, settings, Stream.companies, tick(1))
    again = generate_and_land(engine, settings, Stream.companies, tick(1))
    assert again.batch_id == landed.batch_id and not again.created
    before = snapshot(engine)
    for stage in (refine_silver, build_gold):
        with write_session(engine) as session:
            stage(session, landed.batch_id)
        once = snapshot(engine)
        with write_session(engine) as session:
            result = stage(session, landed.batch_id)
        assert result.already_done
        assert snapshot(engine) == once
    assert snapshot(engine) != before


def _run_stage(url: str, stage: str, batch_id: str, start) -> None:
    from emugen.db.session import make_engine

    engine = make_engine(url)
    start.wait(30)
    fn = {"silver": refine_silver, "gold": build_gold}[stage]
    with write_session(engine) as session:
        fn(session, batch_id)
    engine.dispose()


def _land(url: str, at: datetime, start) -> None:
    from emugen.db.session import make_engine

    engine = make_engine(url)
    start.wait(30)
    generate_and_land(engine, dirty_settings(), Stream.events, at)
    engine.dispose()


def _together(target, args_list) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=target, args=(*args, start)) for args in args_list]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0


def test_two_processes_running_the_same_stage_at_once_leave_the_same_tables(engine, database_url):
    settings = dirty_settings(rate=0.3, size=300)
    reference_ids = land_round(engine, settings, 1)
    landed = generate_and_land(engine, settings, Stream.events, tick(2))
    expected = None
    for stage in ("silver", "gold"):
        _together(_run_stage, [(database_url, stage, landed.batch_id)] * 2)
        if stage == "silver":
            with read_session(engine) as session:
                rows = session.scalar(
                    select(func.count())
                    .select_from(SilverEvent)
                    .where(SilverEvent.batch_id == landed.batch_id)
                )
                quarantined = session.scalar(
                    select(func.count())
                    .select_from(Quarantine)
                    .where(Quarantine.batch_id == landed.batch_id)
                )
            assert rows + quarantined == landed.record_count
        expected = snapshot(engine)
    # the same stages once more, serially, change nothing
    refine_and_build(engine, landed.batch_id)
    assert snapshot(engine) == expected
    with read_session(engine) as session:
        assert reconcile(session).ok
    assert reference_ids


def test_two_generators_for_the_same_tick_make_one_batch_and_distinct_ticks_get_distinct_seqs(
    engine, database_url
):
    settings = dirty_settings()
    land_round(engine, settings, 0)
    _together(_land, [(database_url, tick(5))] * 2 + [(database_url, tick(6))] * 2)
    with read_session(engine) as session:
        seqs = session.scalars(
            select(BatchRow.seq).where(BatchRow.stream == "events").order_by(BatchRow.seq)
        ).all()
    assert seqs == [1, 2, 3]


def test_a_batch_that_fails_mid_landing_leaves_nothing_behind(engine, monkeypatch):
    settings = dirty_settings(rate=0.3, size=25_000)
    land_round(engine, make_settings(clock={"kind": "wall"}), 0)
    before = snapshot(engine)
    real = bronze_module.bulk_insert
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # after the first chunk of bronze rows went in
            raise OSError("disk full (injected)")
        return real(*args, **kwargs)

    monkeypatch.setattr(bronze_module, "bulk_insert", failing)
    with pytest.raises(OSError, match="injected"):
        generate_and_land(engine, settings, Stream.events, tick(1))
    assert snapshot(engine) == before
    monkeypatch.setattr(bronze_module, "bulk_insert", real)
    landed = generate_and_land(engine, settings, Stream.events, tick(1))
    assert landed.seq == 2  # the failed attempt consumed no seq


def test_replay_reports_identical_for_landed_batches_and_detects_a_tampered_row(engine):
    settings = dirty_settings(rate=0.2, size=40)
    ids = land_round(engine, settings, 0) + land_round(engine, settings, 1)
    with read_session(engine) as session:
        for batch_id in ids:
            assert replay(session, batch_id).identical
    with write_session(engine) as session:
        session.execute(
            update(BronzeRecord)
            .where(BronzeRecord.batch_id == ids[-1], BronzeRecord.row_no == 7)
            .values(payload='{"tampered": true}')
        )
    with read_session(engine) as session:
        report = replay(session, ids[-1])
    assert not report.identical and report.differing == [7]
    assert "row 7" in report.summary()


def test_replay_notices_a_deleted_row_and_altered_truth(engine):
    ids = land_round(engine, dirty_settings(rate=0.5, size=30), 0)
    with write_session(engine) as session:
        session.execute(
            BronzeRecord.__table__.delete().where(
                BronzeRecord.batch_id == ids[1], BronzeRecord.row_no == 29
            )
        )
        session.execute(
            update(InjectedDefect).where(InjectedDefect.batch_id == ids[1]).values(field="nonsense")
        )
    with read_session(engine) as session:
        report = replay(session, ids[1])
    assert report.missing == 1 and not report.truth_matches


def test_an_event_batch_before_any_company_is_in_silver_lands_empty_and_reaches_gold(engine):
    landed = generate_and_land(engine, dirty_settings(), Stream.events, tick(0))
    assert landed.record_count == 0
    refine_and_build(engine, landed.batch_id)
    with read_session(engine) as session:
        batch = session.get(BatchRow, landed.batch_id)
    assert batch.status == "gold" and "no company" in batch.note


def stored_exclusions(session, batch_id: str) -> list[int]:
    """The excluded company ordinals a stored event spec names, resolved from the store."""
    from emugen.generate import BatchSpec
    from emugen.generate.eligible import excluded_of
    from emugen.pipeline.watermark import load_exclusions

    spec = BatchSpec.model_validate_json(session.get(BatchRow, batch_id).spec)
    load_exclusions(session, spec)
    return excluded_of(spec).tolist()


def test_events_wait_for_companies_to_reach_silver_and_skip_rejected_companies(engine):
    settings = dirty_settings(rate=0.5, size=40)
    companies = generate_and_land(engine, settings, Stream.companies, tick(0))
    early = generate_and_land(engine, settings, Stream.events, tick(0))
    assert early.record_count == 0  # landed in bronze only: not settled yet
    refine_and_build(engine, companies.batch_id)
    later = generate_and_land(engine, settings, Stream.events, tick(1))
    with read_session(engine) as session:
        stored = json.loads(session.get(BatchRow, later.batch_id).spec)
        excluded = stored_exclusions(session, later.batch_id)
        duplicates = json.loads(session.get(BatchRow, companies.batch_id).injected_by_type)
        count = session.get(BatchRow, later.batch_id).record_count
    assert count == 40
    assert stored["watermark"] == companies.record_count - duplicates.get("duplicate", 0)
    assert excluded  # half the companies were defective
    assert stored["excluded_ordinals"] == [] and stored["exclusions"]["count"] == len(excluded)
    refine_and_build(engine, later.batch_id)
    with read_session(engine) as session:
        assert reconcile(session).ok


def test_a_failed_company_batch_does_not_stop_later_companies_from_getting_events(engine):
    settings = dirty_settings(rate=0.0, size=10)
    first = generate_and_land(engine, settings, Stream.companies, tick(0))
    refine_and_build(engine, first.batch_id)
    failed = generate_and_land(engine, settings, Stream.companies, tick(1))
    with write_session(engine) as session:
        assert mark_failed(session, failed.batch_id, "silver", "retries ran out")
    third = generate_and_land(engine, settings, Stream.companies, tick(2))
    refine_and_build(engine, third.batch_id)
    events = generate_and_land(engine, settings, Stream.events, tick(3), size=200)
    refine_and_build(engine, events.batch_id)
    with read_session(engine) as session:
        spec = json.loads(session.get(BatchRow, events.batch_id).spec)
        excluded = stored_exclusions(session, events.batch_id)
        used = set(session.scalars(select(SilverEvent.company_id).distinct()))
        planned_by = {
            landed.batch_id: set(
                session.scalars(
                    select(SilverCompany.company_id).where(
                        SilverCompany.batch_id == landed.batch_id
                    )
                )
            )
            for landed in (first, third)
        }
        assert session.get(BatchRow, events.batch_id).status == "gold"
        assert reconcile(session).ok
    assert spec["watermark"] == 30
    assert set(range(10, 20)) <= set(excluded)
    assert used <= planned_by[first.batch_id] | planned_by[third.batch_id]
    assert used & planned_by[third.batch_id]  # companies after the failed batch get events


def test_silver_refuses_a_batch_that_is_not_in_bronze_and_gold_one_not_in_silver(engine):
    landed = generate_and_land(engine, dirty_settings(), Stream.companies, tick(0))
    with (
        pytest.raises(StageOrderError, match="gold needs a silver batch"),
        write_session(engine) as session,
    ):
        build_gold(session, landed.batch_id)


def test_in_process_runs_number_batches_without_gaps(engine):
    done = run_pipeline(engine, dirty_settings(size=5), 4)
    assert [p.landed.batch_id for p in done][:2] == ["companies-000000001", "events-000000001"]
    assert [p.landed.seq for p in done if p.landed.stream is Stream.events] == [1, 2, 3, 4]


def test_distinct_tick_times_never_repeat():
    clock = TickClock()
    ticks = [clock.next() for _ in range(1000)]
    assert len(set(ticks)) == 1000 and ticks == sorted(ticks)


@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1)).map(
        lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=UTC)
    )
)
def test_silver_s_sliced_timestamp_text_equals_what_the_column_type_would_store(moment):
    from sqlalchemy.dialects import sqlite

    from emugen.db.columns import UTCDateTime, sqlite_text_from_stamp

    stamp = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert sqlite_text_from_stamp(stamp) == UTCDateTime().process_bind_param(
        moment, sqlite.dialect()
    )


def test_stamps_that_are_not_millisecond_canonical_take_the_datetime_path():
    from emugen.db.columns import sqlite_text_from_stamp

    assert sqlite_text_from_stamp("2026-01-01T00:00:00Z") is None
    assert sqlite_text_from_stamp("2026-01-01T00:00:00.123456Z") is None


def test_an_event_id_an_earlier_batch_holds_is_quarantined_as_a_duplicate_naming_that_batch(engine):
    # On PostgreSQL silver's streamed COPY clashes on the held id, is undone, and the batch
    # goes the exact way: the outcome must be the same as on SQLite
    settings = dirty_settings(rate=0.0)
    first = land_round(engine, settings, 0)[1]
    second = generate_and_land(engine, settings, Stream.events, tick(1)).batch_id
    with write_session(engine) as session:
        held, held_row = session.execute(
            select(SilverEvent.event_id, SilverEvent.row_no)
            .where(SilverEvent.batch_id == first)
            .order_by(SilverEvent.row_no)
            .limit(1)
        ).one()
        where = (BronzeRecord.batch_id == second, BronzeRecord.row_no == 5)
        payload = session.scalar(select(BronzeRecord.payload).where(*where))
        ours = json.loads(payload)["event_id"]
        session.execute(
            update(BronzeRecord).where(*where).values(payload=payload.replace(ours, held))
        )
    with write_session(engine) as session:
        refined = refine_silver(session, second)
    assert refined.by_reason == {"duplicate": 1} and refined.valid == 19
    with read_session(engine) as session:
        details = list(
            session.scalars(select(Quarantine.detail).where(Quarantine.batch_id == second))
        )
        landed = session.scalar(
            select(func.count()).select_from(SilverEvent).where(SilverEvent.batch_id == second)
        )
    assert details == [f"event_id {held} is already in silver (batch {first} row {held_row})"]
    assert landed == 19


def test_a_bulk_insert_cache_grows_sqlite_for_the_block_only_and_is_capped(tmp_path):
    from emugen.db.bulk import INSERT_CACHE_MAX, insert_cache
    from emugen.db.session import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'cache.db'}")

    def cache_size(session) -> int:
        return session.connection().exec_driver_sql("PRAGMA cache_size").scalar_one()

    try:
        with write_session(engine) as session:
            before = cache_size(session)
            with insert_cache(session, 8 * 2**20):
                assert cache_size(session) == -8192
            assert cache_size(session) == before
            with insert_cache(session, 10 * INSERT_CACHE_MAX):
                assert cache_size(session) == -INSERT_CACHE_MAX // 1024
            with insert_cache(session, 1024):  # never below what the connection has
                assert cache_size(session) == before
            with pytest.raises(RuntimeError), insert_cache(session, 8 * 2**20):
                raise RuntimeError("a failed insert")
            assert cache_size(session) == before
    finally:
        engine.dispose()
