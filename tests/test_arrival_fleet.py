"""Arrival conditions through the fleet's own wiring (Celery's in-process test worker): every
batch reaches gold, silver holds exactly the valid records, the ledger is the spec's."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import yaml
from sqlalchemy import select

from emugen.db.models import BatchRow
from emugen.db.session import engine_for, init_db, read_session
from emugen.fleet import tasks, worker
from emugen.generate import BatchSpec, draft
from emugen.pipeline.arrivals import ledger_rows, recorded_ledger
from emugen.pipeline.reconcile import reconcile
from tests.fleet_helpers import write_config
from tests.test_arrival_pipeline import silver_events, valid_records

pytest_plugins = ("celery.contrib.pytest",)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SETTLE_S = 120
ARRIVING = {
    "late": {"rate": 0.4, "max_lateness": "PT3S"},
    "out_of_order": True,
    "redelivered": {"rate": 0.4, "max_age": 2},
    "delayed": {"rate": 0.5, "max_delay": 1},
    "drift": {"from_seq": 3},
}


def test_the_fleet_lands_refines_and_builds_arriving_data_exactly(
    tmp_path, monkeypatch, database_url, celery_session_app, celery_session_worker
):
    config = write_config(tmp_path / "emugen.yaml", database_url, size=(6, 12))
    data = yaml.safe_load(config.read_text())
    data["events"]["arrival"] = ARRIVING
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("EMUGEN_CONFIG", str(config))
    worker.configure(config)
    engine = engine_for(database_url)
    init_db(engine)
    for i in range(5):
        at = (T0 + timedelta(seconds=2 * i)).isoformat()
        tasks.generate_batch.delay("companies", at).get(timeout=SETTLE_S)
        tasks.generate_batch.delay("events", at).get(timeout=SETTLE_S)
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        with read_session(engine) as session:
            found = dict(session.execute(select(BatchRow.batch_id, BatchRow.status)).all())
        if len(found) == 10 and set(found.values()) == {"gold"}:
            break
        time.sleep(0.05)
    assert len(found) == 10 and set(found.values()) == {"gold"}
    assert silver_events(engine) == valid_records(engine)
    with read_session(engine) as session:
        assert reconcile(session).ok
        conditions = set()
        for batch_id, spec in session.execute(select(BatchRow.batch_id, BatchRow.spec)):
            recorded = recorded_ledger(session, batch_id)
            assert recorded == ledger_rows(batch_id, draft(BatchSpec.model_validate_json(spec)))
            conditions |= {r[3] for r in recorded}
    assert {"late", "redelivered", "drift"} <= conditions
