"""Delayed batches in the landing zone: a delayed batch's file waits for a later batch's tick,
lands in its own interval's partition, and its manifest says after which batch."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from emugen.db.ledger import ArrivalEntry
from emugen.db.models import BatchRow, LandedFile
from emugen.db.session import read_session
from emugen.pipeline.runner import run_pipeline
from emugen.sinks.lander import unlanded
from tests.conftest import make_settings


def delayed_settings(root: Path, **arrival: object):
    return make_settings(landing={"root": str(root)}, events={
        "arrival": arrival or {"delayed": {"rate": 0.6, "max_delay": 2},
                               "drift": {"from_seq": 2}}})


def test_a_delayed_batchs_file_lands_after_the_tick_it_waits_for_in_its_own_partition(
        engine, tmp_path):
    root = tmp_path / "land"
    run_pipeline(engine, delayed_settings(root), 10, size=10)
    with read_session(engine) as session:
        waits = dict(session.execute(select(ArrivalEntry.batch_id,
                                            ArrivalEntry.released_after_batch_id)
                                     .where(ArrivalEntry.condition == "delayed")).all())
        batches = {b.batch_id: b for b in session.scalars(select(BatchRow))}
        files = {f.batch_id: f for f in session.scalars(select(LandedFile))}
        stale = unlanded(session, timedelta(0))
    assert len(waits) >= 3
    for batch_id, later in waits.items():
        if later not in batches:  # its tick has not come: pending, not lost
            assert batch_id not in files and batch_id not in stale
            continue
        landed = files[batch_id]
        assert landed.landed_at > batches[later].bronze_at
        start = batches[batch_id].interval_start
        assert f"date={start:%Y-%m-%d}/hour={start:%H}/{batch_id}" in landed.path
        manifest = json.loads((root / landed.manifest_path).read_text())
        assert manifest["released_after"] == later
        assert manifest["contract_version"] == (2 if batches[batch_id].seq >= 2 else 1)
    on_time = [b for b in files if b.startswith("events") and b not in waits]
    assert on_time
    for batch_id in on_time:
        manifest = json.loads((root / files[batch_id].manifest_path).read_text())
        assert "released_after" not in manifest and "contract_version" in manifest


def test_without_arrival_conditions_a_manifest_has_no_arrival_keys(engine, tmp_path):
    root = tmp_path / "land"
    run_pipeline(engine, make_settings(landing={"root": str(root)}), 1, size=5)
    with read_session(engine) as session:
        path = session.scalar(select(LandedFile.manifest_path)
                              .where(LandedFile.batch_id == "events-000000001"))
    manifest = json.loads((root / path).read_text())
    assert "contract_version" not in manifest and "released_after" not in manifest
    assert "arrival" not in manifest["spec"]
