"""Gold adds each batch's share: several processes building gold at once, in any order, leave
gold equal to a recomputation from silver."""

from __future__ import annotations

import multiprocessing
import random

from sqlalchemy import func, select

from emugen.db.models import BatchRow, GoldWindowDriver, SilverEvent
from emugen.db.session import read_session, write_session
from emugen.pipeline.bronze import generate_and_land
from emugen.pipeline.gold import build_gold
from emugen.pipeline.reconcile import reconcile
from emugen.pipeline.silver import refine_silver
from emugen.vocabulary import Stream
from tests.store_helpers import gold_from_scratch, gold_tables
from tests.test_store import dirty_settings, tick

WORKERS = 4


def _build_all(url: str, batch_ids: list[str], seed: int, start) -> None:  # noqa: ANN001
    """One worker: gold for every batch, in its own shuffled order (most find theirs done)."""
    from emugen.db.session import make_engine

    engine = make_engine(url)
    order = list(batch_ids)
    random.Random(seed).shuffle(order)
    start.wait(30)
    for batch_id in order:
        with write_session(engine) as session:
            build_gold(session, batch_id)
    engine.dispose()


def _refined_batches(engine, rounds: int) -> list[str]:  # noqa: ANN001
    """Company and event batches in silver, not yet in gold; their events share windows,
    companies and drivers (ten-second ticks, one-minute windows)."""
    settings = dirty_settings(rate=0.1, size=40)
    ids = []
    for n in range(rounds):
        for stream in (Stream.companies, Stream.events):
            landed = generate_and_land(engine, settings, stream, tick(n))
            with write_session(engine) as session:
                refine_silver(session, landed.batch_id)
            ids.append(landed.batch_id)
    return ids


def test_workers_building_gold_at_once_in_different_orders_leave_gold_equal_to_silver(
    engine, database_url
):
    ids = _refined_batches(engine, 10)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [
        ctx.Process(target=_build_all, args=(database_url, ids, seed, start))
        for seed in range(WORKERS)
    ]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(90)
        assert p.exitcode == 0
    assert gold_tables(engine) == gold_from_scratch(engine, 60)
    with read_session(engine) as session:
        assert set(session.scalars(select(BatchRow.status))) == {"gold"}
        assert reconcile(session).ok
        triples = session.scalar(select(func.count()).select_from(GoldWindowDriver))
    companies, _ = gold_tables(engine)
    assert sum(row[8] for row in companies) == triples
    assert _shared_drivers(engine) > 0  # the premise: batches met the same drivers


def _shared_drivers(engine) -> int:  # noqa: ANN001
    """How many (batch, window, company, driver) shares repeat a triple another batch has."""
    window = SilverEvent.event_ms // 60_000
    triple = (window, SilverEvent.company_id, SilverEvent.driver_id)
    with read_session(engine) as session:
        shares = session.scalar(
            select(func.count()).select_from(
                select(SilverEvent.batch_id, *triple).distinct().subquery()
            )
        )
        distinct = session.scalar(
            select(func.count()).select_from(select(*triple).distinct().subquery())
        )
    return shares - distinct


def test_gold_counts_a_driver_two_batches_share_in_one_window_once(engine):
    ids = _refined_batches(engine, 6)
    events = [b for b in ids if b.startswith("events")]
    for batch_id in [b for b in ids if b not in events] + events[::-1]:  # newest events first
        with write_session(engine) as session:
            build_gold(session, batch_id)
    assert _shared_drivers(engine) > 0
    assert gold_tables(engine) == gold_from_scratch(engine, 60)


def test_a_batchs_counted_drivers_are_found_through_the_batch_index_not_a_scan(tmp_path):
    from sqlalchemy import text
    from sqlalchemy.dialects import sqlite

    from emugen.db.session import init_db, make_engine
    from emugen.pipeline.gold import drivers_counted_by

    engine = make_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    init_db(engine)
    query = drivers_counted_by("events-000000001").compile(
        dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
    )
    with engine.connect() as conn:
        plan = " ".join(row[3] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {query}")))
    engine.dispose()
    # a scan of the primary key grows with every driver row gold keeps (a soak: 36 ms a batch)
    assert "ix_gold_window_drivers_batch_id" in plan, plan
