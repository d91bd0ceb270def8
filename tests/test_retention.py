"""Retention prunes old emulated batches in short transactions; gold, companies and seq stay."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, event, func, select

from emugen.db.models import (
    BatchRow,
    BronzeRecord,
    ConfigReload,
    ControlState,
    InjectedDefect,
    Quarantine,
    SilverCompany,
    SilverEvent,
    SkippedTick,
)
from emugen.db.session import read_session, write_session
from emugen.fleet.control import clean, record_reload, record_skip, set_paused
from emugen.fleet.entries import entries_for
from emugen.pipeline.reconcile import reconcile
from emugen.pipeline.retention import prune
from emugen.pipeline.runner import run_pipeline
from emugen.pipeline.watermark import company_floor, company_watermark, pruned_floor
from tests.conftest import make_settings
from tests.store_helpers import gold_tables

DAY = timedelta(days=1)
LATER = datetime.now(UTC) + 2 * DAY  # "now" for prune: every batch made here is 2 days old


@pytest.fixture
def dirty():
    return make_settings(companies={"quality": {"rate": 0.3}}, events={"quality": {"rate": 0.3}})


def count(engine, model, *where) -> int:
    with read_session(engine) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def seqs(engine, stream: str) -> list[int]:
    with read_session(engine) as session:
        return list(
            session.scalars(
                select(BatchRow.seq).where(BatchRow.stream == stream).order_by(BatchRow.seq)
            )
        )


def test_old_gold_batches_lose_their_rows_while_gold_companies_and_the_newest_batch_stay(
    engine, dirty
):
    run_pipeline(engine, dirty, 4)
    gold_before = gold_tables(engine)
    companies_before = count(engine, SilverCompany)

    result = prune(engine, DAY, now=LATER)

    assert result.complete and result.batches == 6  # 3 of each stream; the 4th ones stay
    assert seqs(engine, "events") == [4] and seqs(engine, "companies") == [4]
    kept = ("companies-000000004", "events-000000004")
    for model in (BronzeRecord, InjectedDefect, Quarantine, SilverEvent):
        assert count(engine, model, model.batch_id.not_in(kept)) == 0, model.__tablename__
    assert count(engine, BronzeRecord) > 0
    assert gold_tables(engine) == gold_before
    assert count(engine, SilverCompany) == companies_before
    with read_session(engine) as session:
        assert reconcile(session).ok


def test_nothing_younger_than_the_retention_nor_unfinished_nor_production_is_pruned(engine, dirty):
    run_pipeline(engine, dirty, 3)
    assert prune(engine, DAY).batches == 0  # made just now: younger than a day
    with write_session(engine) as session:
        session.get(BatchRow, "events-000000001").status = "failed"
        session.get(BatchRow, "events-000000002").mode = "production"
    result = prune(engine, DAY, now=LATER)
    assert seqs(engine, "events") == [1, 2, 3]
    assert result.batches == 2  # companies 1 and 2


def test_pruned_company_batches_leave_a_floor_so_the_watermark_and_new_events_hold(engine, dirty):
    run_pipeline(engine, dirty, 5)
    with read_session(engine) as session:
        before = company_watermark(session)
    prune(engine, DAY, now=LATER)
    with read_session(engine) as session:
        floor, excluded = pruned_floor(session)
        after = company_watermark(session)
    assert floor == 40 and after == before  # 4 batches of 10 companies below the floor
    assert set(excluded) <= set(before[1])
    with write_session(engine) as session:  # without the walk's checkpoint, the floor serves
        session.execute(delete(ControlState).where(ControlState.key == "company_settled"))
    with read_session(engine) as session:
        assert company_floor(session)[0] == 40 and company_watermark(session) == before

    done = run_pipeline(engine, dirty, 3)  # companies 6, 7, 8 and events 6, 7, 8
    assert [p.landed.seq for p in done] == [6, 6, 7, 7, 8, 8]
    with read_session(engine) as session:
        newest = session.get(BatchRow, "events-000000008")
        result = reconcile(session)
    assert newest.status == "gold" and json.loads(newest.spec)["watermark"] == 80
    assert result.ok and not result.false_alarms  # no event lost its company


def test_a_large_batch_is_pruned_in_transactions_of_bounded_size(engine, dirty):
    run_pipeline(engine, dirty, 2, size=1_000)
    deleted, per_transaction = [0], []

    def counted(_conn, cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            deleted[0] += max(cursor.rowcount, 0)

    def committed(_conn) -> None:
        per_transaction.append(deleted[0])
        deleted[0] = 0

    event.listen(engine, "after_cursor_execute", counted)
    event.listen(engine, "commit", committed)
    try:
        result = prune(engine, DAY, now=LATER, chunk_rows=250)
    finally:
        event.remove(engine, "after_cursor_execute", counted)
        event.remove(engine, "commit", committed)
    assert result.complete and result.rows["bronze_records"] == 2_000
    # four child tables, at most 250 rows of each per transaction, never a whole batch at once
    assert max(per_transaction) <= 4 * 250
    assert sum(per_transaction) == sum(result.rows.values())


def test_a_run_out_of_time_stops_and_the_next_run_finishes(engine, dirty):
    run_pipeline(engine, dirty, 3)
    first = prune(engine, DAY, now=LATER, budget_s=0)
    assert not first.complete and first.batches == 0
    assert prune(engine, DAY, now=LATER).batches == 4


def test_old_skipped_ticks_and_reloads_go_but_the_latest_reloads_stay(engine):
    long_ago = datetime.now(UTC) - 3 * DAY
    with write_session(engine) as session:
        for i in range(5):
            record_skip(session, "events", long_ago + timedelta(seconds=i), "in_flight", "x")
        record_reload(session, "a.yaml", fingerprint="f1", mode="emulated")
        record_reload(session, "a.yaml", problems=["bad"])
        record_reload(session, "a.yaml", fingerprint="f2", mode="emulated")
    with write_session(engine) as session:
        for row in session.scalars(select(ConfigReload)):
            row.at = long_ago
        for row in session.scalars(select(SkippedTick)):
            row.at = long_ago
    result = prune(engine, DAY, chunk_rows=100)
    assert result.rows["skipped_ticks"] == 5 and count(engine, SkippedTick) == 0
    with read_session(engine) as session:
        left = [(r.accepted, r.fingerprint) for r in session.scalars(select(ConfigReload))]
    assert sorted(left, key=repr) == sorted([(False, None), (True, "f2")], key=repr)


def test_the_watermark_walk_starts_from_its_checkpoint_and_agrees_with_a_full_walk(engine, dirty):
    run_pipeline(engine, dirty, 6)
    with write_session(engine) as session:
        checkpoint = company_floor(session)
        walked = company_watermark(session)
    assert checkpoint == walked and walked[0] == 60
    with write_session(engine) as session:  # forget every mark: a walk from ordinal 0
        session.execute(delete(ControlState))
    with write_session(engine) as session:
        assert company_watermark(session) == walked
    with write_session(engine) as session:  # a checkpoint means rows below are not read
        session.get(BatchRow, "companies-000000002").status = "bronze"
        assert company_watermark(session) == walked


def test_clean_forgets_the_company_floor_and_the_retention_tally(engine, dirty):
    from emugen.pipeline.retention import tally

    run_pipeline(engine, dirty, 3)
    prune(engine, DAY, now=LATER)
    with read_session(engine) as session:
        assert tally(session)["events"]["batches"] == 2
    with write_session(engine) as session:
        set_paused(session, True)
        clean(session)
    with read_session(engine) as session:
        assert company_floor(session) == (0, ())
        assert company_watermark(session) == (0, ())
        assert tally(session)["events"]["batches"] == 0


def test_beat_schedules_the_pruner_unless_retention_is_off():
    entries = entries_for(make_settings(fleet={"prune_interval": "PT2M"}))
    assert entries["prune"]["task"] == "emugen.prune"
    assert entries["prune"]["schedule"].run_every == timedelta(minutes=2)
    assert entries["prune"]["options"]["queue"] == "pipeline"
    assert "prune" not in entries_for(make_settings(fleet={"retain_batches_for": None}))
