"""The arrival ledger in the store: landed with bronze, replayed, exported, and the same from
a backfill as from the live fleet (SQLite file and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import yaml
from click.testing import CliRunner
from sqlalchemy import select, text

from emugen.backfill.plan import plan_backfill
from emugen.cli import main
from emugen.db.ledger import ArrivalEntry
from emugen.db.models import BatchRow
from emugen.db.session import read_session, write_session
from emugen.generate import BatchSpec, draft
from emugen.pipeline.arrivals import ledger_rows, recorded_ledger
from emugen.pipeline.replay import replay
from emugen.pipeline.runner import run_pipeline
from tests.conftest import SIMULATED, make_settings
from tests.test_backfill import (  # noqa: F401  (second_engine: a fixture)
    BOTH,
    START,
    backfill_shuffled,
    live_in_order,
    second_engine,
    small_settings,
)

ARRIVING = {
    "late": {"rate": 0.2, "max_lateness": "PT20S"},
    "out_of_order": True,
    "redelivered": {"rate": 0.2, "max_age": 2},
    "delayed": {"rate": 0.5, "max_delay": 2},
    "drift": {"from_seq": 3},
}


def arriving_settings():
    return make_settings(events={"quality": {"rate": 0.1}, "arrival": ARRIVING})


def ledgers(engine) -> dict[str, list[tuple]]:
    with read_session(engine) as session:
        ids = session.scalars(select(BatchRow.batch_id).order_by(BatchRow.batch_id)).all()
        return {batch_id: recorded_ledger(session, batch_id) for batch_id in ids}


def test_bronze_lands_each_batchs_arrival_ledger_as_its_spec_regenerates_it(engine):
    run_pipeline(engine, arriving_settings(), 5, size=40)
    stored = ledgers(engine)
    with read_session(engine) as session:
        for batch_id, rows in stored.items():
            spec = BatchSpec.model_validate_json(session.get(BatchRow, batch_id).spec)
            assert rows == ledger_rows(batch_id, draft(spec))
            assert replay(session, batch_id).identical
    conditions = {r[3] for rows in stored.values() for r in rows}
    assert conditions == {"late", "redelivered", "delayed", "drift"}
    drift = [r for rows in stored.values() for r in rows if r[3] == "drift"]
    assert [(r[0], r[9:]) for r in drift] == [("events-000000003", ("events", 3, 2, "odometer_km"))]
    copies = [r for rows in stored.values() for r in rows if r[3] == "redelivered"]
    assert all(r[6] < r[0] and r[7] is not None for r in copies)  # an earlier batch's row


def test_replay_reports_a_ledger_that_differs_from_the_regenerated_one(engine):
    run_pipeline(engine, arriving_settings(), 2, size=40)
    with write_session(engine) as session:
        session.execute(
            text("UPDATE arrival_ledger SET lateness_ms = lateness_ms + 1 WHERE condition = 'late'")
        )
    with read_session(engine) as session:
        report = replay(session, "events-000000002")
    assert not report.identical
    assert "arrival ledger differs" in report.summary()


def test_export_arrivals_writes_the_ledger_and_never_the_entry_key(engine, database_url, tmp_path):
    run_pipeline(engine, arriving_settings(), 4, size=40)
    config = tmp_path / "emugen.yaml"
    config.write_text(yaml.safe_dump({"database_url": database_url, "clock": SIMULATED}))
    out = tmp_path / "arrivals.jsonl"
    result = CliRunner().invoke(
        main,
        [
            "export",
            "arrivals",
            "--format",
            "jsonl",
            "--stream",
            "events",
            "--out",
            str(out),
            "--config",
            str(config),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in Path(out).read_text().splitlines()]
    with read_session(engine) as session:
        assert len(rows) == session.query(ArrivalEntry).count() > 0
    assert "entry" not in rows[0]
    assert {r["condition"] for r in rows} >= {"late", "redelivered"}
    late = next(r for r in rows if r["condition"] == "late")
    assert late["lateness_ms"] > 0 and late["belongs_to_window"] and late["row_no"] is not None
    assert f"{len(rows):,} arrivals rows written" in result.output


def test_a_backfill_lands_the_same_arrival_ledger_as_the_live_fleet(engine, second_engine):  # noqa: F811
    settings = small_settings()
    settings = settings.model_copy(
        update={
            "events": settings.events.model_copy(
                update={"arrival": arriving_settings().events.arrival}
            )
        }
    )
    plan = plan_backfill(settings, START, START + timedelta(hours=2), BOTH)
    live_in_order(engine, settings, plan)
    backfill_shuffled(second_engine, plan, seed=3)
    live, backfilled = ledgers(engine), ledgers(second_engine)
    assert live == backfilled
    assert any(r[3] == "redelivered" for rows in live.values() for r in rows)
