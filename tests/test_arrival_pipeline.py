"""emugen's own silver and gold under late, out-of-order, redelivered, delayed and drifted data
(SQLite file and PostgreSQL): exact, conserving, and independent of the order batches finish."""

from __future__ import annotations

from sqlalchemy import func, select

from emugen.db.ledger import ArrivalEntry
from emugen.db.models import BatchRow, Quarantine, SilverEvent
from emugen.db.session import read_session
from emugen.generate import BatchSpec, generate
from emugen.pipeline.bronze import Origin, generate_and_land
from emugen.pipeline.reconcile import reconcile
from emugen.pipeline.runner import TickClock, refine_and_build, run_pipeline
from emugen.vocabulary import Stream
from tests.conftest import make_settings
from tests.store_helpers import gold_from_scratch, gold_tables

ARRIVING = {
    "late": {"rate": 0.2, "max_lateness": "PT25S"},
    "out_of_order": True,
    "redelivered": {"rate": 0.15, "max_age": 3},
    "delayed": {"rate": 0.3, "max_delay": 2},
    "drift": {"from_seq": 3},
}


def arriving_settings():
    return make_settings(
        events={"quality": {"rate": 0.15}, "arrival": ARRIVING},
        companies={"quality": {"rate": 0.05}},
    )


def valid_records(engine) -> dict[str, set[tuple[str, int]]]:
    """From the generator alone: per event id, the (batch, row) of every valid record, that is
    neither a defect nor a redelivered copy. Silver must hold exactly these."""
    expected: dict[str, set[tuple[str, int]]] = {}
    with read_session(engine) as session:
        specs = session.execute(
            select(BatchRow.batch_id, BatchRow.spec).where(BatchRow.stream == "events")
        ).all()
    for batch_id, text in specs:
        batch = generate(BatchSpec.model_validate_json(text))
        skip = {t.row_no for t in batch.truth} | {
            a.row_no for a in batch.arrivals if a.condition == "redelivered"
        }
        for row_no, record in enumerate(batch.records):
            if row_no not in skip:
                expected.setdefault(record["event_id"], set()).add((batch_id, row_no))
    return expected


def silver_events(engine) -> dict[str, set[tuple[str, int]]]:
    with read_session(engine) as session:
        rows = session.execute(
            select(SilverEvent.event_id, SilverEvent.batch_id, SilverEvent.row_no)
        ).all()
    out: dict[str, set[tuple[str, int]]] = {}
    for event_id, batch_id, row_no in rows:
        out.setdefault(event_id, set()).add((batch_id, row_no))
    return out


def test_silver_keeps_every_valid_record_and_drops_only_the_redelivered_copies(engine):
    run_pipeline(engine, arriving_settings(), 6, size=60)
    assert silver_events(engine) == valid_records(engine)
    with read_session(engine) as session:
        found = reconcile(session)
        copies = set(
            session.execute(
                select(ArrivalEntry.batch_id, ArrivalEntry.row_no).where(
                    ArrivalEntry.condition == "redelivered"
                )
            ).all()
        )
        quarantined = set(session.execute(select(Quarantine.batch_id, Quarantine.row_no)).all())
        dropped = session.scalar(
            select(BatchRow.redelivered_count).where(BatchRow.batch_id == "events-000000004")
        )
        late = session.scalars(select(ArrivalEntry.condition)).all()
    assert copies and not copies & quarantined
    assert dropped == sum(1 for b, _ in copies if b == "events-000000004")
    assert {"late", "redelivered", "drift"} <= set(late)
    assert found.ok, found.as_dict()  # every defect caught, no false alarm, conservation holds
    assert found.caught > 0 and not found.unbalanced


def test_gold_equals_a_recomputation_from_every_valid_record_in_any_completion_order(engine):
    settings = arriving_settings()
    clock, landed = TickClock(), []
    for _ in range(6):
        for stream in (Stream.companies, Stream.events):
            done = generate_and_land(
                engine, settings, stream, clock.next(), size=60, origin=Origin("test")
            )
            if stream is Stream.companies:
                refine_and_build(engine, done.batch_id)  # events need their companies
            else:
                landed.append(done.batch_id)
    for batch_id in reversed(landed):  # the newest first: copies before their originals
        refine_and_build(engine, batch_id)
    assert silver_events(engine) == valid_records(engine)
    assert gold_tables(engine) == gold_from_scratch(engine, 60)
    with read_session(engine) as session:
        assert reconcile(session).ok


def test_a_batch_whose_counts_do_not_add_up_is_reported_unbalanced(engine):
    run_pipeline(engine, arriving_settings(), 3, size=40)
    from emugen.db.session import write_session

    with write_session(engine) as session:
        session.get(BatchRow, "events-000000003").redelivered_count += 1
    with read_session(engine) as session:
        found = reconcile(session)
    assert not found.ok
    assert list(found.unbalanced) == ["events-000000003"]
    assert "redelivered" in found.as_dict()["unbalanced"]["events-000000003"]


def test_gold_counts_a_revision_for_each_batch_whose_late_records_reopen_a_closed_window(engine):
    settings = make_settings(
        events={
            "quality": {"rate": 0.1},
            "arrival": {"late": {"rate": 0.3, "max_lateness": "PT90S"}},
        }
    )
    run_pipeline(engine, settings, 8, size=40)
    from collections import Counter

    from emugen.db.ledger import GoldWindowRevision
    from emugen.vocabulary import EPOCH, MS

    expected: Counter[int] = Counter()
    with read_session(engine) as session:
        late = session.execute(
            select(ArrivalEntry.batch_id, ArrivalEntry.belongs_to_window, BatchRow.interval_start)
            .join(BatchRow, BatchRow.batch_id == ArrivalEntry.batch_id)
            .where(ArrivalEntry.condition == "late")
        ).all()
        reopened = {(b, (w - EPOCH) // MS) for b, w, start in late if w + (60 * 1000) * MS <= start}
        expected.update(w for _, w in reopened)
        revised = dict(
            session.execute(
                select(GoldWindowRevision.window_start_ms, GoldWindowRevision.revisions)
            ).all()
        )
    assert expected and revised == dict(expected)
    assert gold_tables(engine) == gold_from_scratch(engine, 60)


def test_metrics_count_each_arrival_condition_per_stream_from_the_ledger(engine):
    from emugen.web.metrics import StoreCollector, figures

    run_pipeline(engine, arriving_settings(), 4, size=40)
    collector = StoreCollector()
    with read_session(engine) as session:
        collector.figures = figures(session)
        expected = dict(
            session.execute(
                select(ArrivalEntry.condition, func.count()).group_by(ArrivalEntry.condition)
            ).all()
        )
    samples = {
        s.labels["condition"]: s.value
        for family in collector.collect()
        if family.name == "emugen_arrivals"
        for s in family.samples
        if s.labels.get("stream") == "events"
    }
    assert samples == expected and samples["late"] > 0 and samples["drift"] == 1


def test_status_shows_each_streams_arrival_counts_and_its_contract_version(engine):
    from emugen.status.report import format_status, status

    run_pipeline(engine, arriving_settings(), 4, size=40)
    with read_session(engine) as session:
        report = status(session)
        expected = dict(
            session.execute(
                select(ArrivalEntry.condition, func.count()).group_by(ArrivalEntry.condition)
            ).all()
        )
    assert report["arrivals"] == {"events": {**expected, "contract_version": 2}}
    line = next(t for t in format_status(report).splitlines() if t.startswith("arrivals:"))
    assert "contract_version 2" in line and f"late {expected['late']}" in line
