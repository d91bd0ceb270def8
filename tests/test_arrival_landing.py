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
from emugen.sinks.relander import unlanded
from tests.conftest import make_settings


def delayed_settings(root: Path, **arrival: object):
    return make_settings(
        landing={"root": str(root)},
        events={
            "arrival": arrival
            or {"delayed": {"rate": 0.6, "max_delay": 2}, "drift": {"from_seq": 2}}
        },
    )


def test_a_delayed_batchs_file_lands_after_the_tick_it_waits_for_in_its_own_partition(
    engine, tmp_path
):
    root = tmp_path / "land"
    run_pipeline(engine, delayed_settings(root), 10, size=10)
    with read_session(engine) as session:
        waits = dict(
            session.execute(
                select(ArrivalEntry.batch_id, ArrivalEntry.released_after_batch_id).where(
                    ArrivalEntry.condition == "delayed"
                )
            ).all()
        )
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
        path = session.scalar(
            select(LandedFile.manifest_path).where(LandedFile.batch_id == "events-000000001")
        )
    manifest = json.loads((root / path).read_text())
    assert "contract_version" not in manifest and "released_after" not in manifest
    assert "arrival" not in manifest["spec"]


def test_the_landed_files_manifests_and_exported_ledger_disclose_exactly_what_happened(
    engine, database_url, tmp_path
):
    """An outsider's audit: from the zone and `emugen export arrivals` alone, recompute the
    late, redelivered, delayed and drift entries; none undisclosed, none that did not happen."""
    import yaml
    from click.testing import CliRunner

    from emugen.cli import main
    from tests.conftest import SIMULATED

    root = tmp_path / "land"
    settings = delayed_settings(
        root,
        late={"rate": 0.2, "max_lateness": "PT20S"},
        out_of_order=True,
        redelivered={"rate": 0.2, "max_age": 2},
        delayed={"rate": 0.4, "max_delay": 2},
        drift={"from_seq": 4},
    )
    run_pipeline(engine, settings, 8, size=30)
    config = tmp_path / "emugen.yaml"
    config.write_text(yaml.safe_dump({"database_url": database_url, "clock": SIMULATED}))
    out = tmp_path / "arrivals.jsonl"
    assert (
        CliRunner()
        .invoke(
            main,
            ["export", "arrivals", "--format", "jsonl", "--out", str(out), "--config", str(config)],
        )
        .exit_code
        == 0
    )
    ledger = [json.loads(line) for line in out.read_text().splitlines()]

    manifests = sorted(
        (json.loads(p.read_text()) for p in root.glob("_manifests/events/*.json")),
        key=lambda m: m["seq"],
    )
    found = _recomputed(root, manifests)
    assert {c[0] for c in found} == {"late", "redelivered", "delayed", "drift"}
    assert found == _disclosed(ledger, {m["batch_id"] for m in manifests})


def _recomputed(root: Path, manifests: list[dict]) -> set[tuple]:
    """What the files and manifests show: lines before their interval within the declared
    lateness, lines repeating an earlier batch's bytes, released_after, version changes."""
    found: set[tuple] = set()
    seen: dict[str, tuple[str, int]] = {}  # a line's bytes -> where it first landed
    versions = {m["seq"]: m["contract_version"] for m in manifests}
    for m in manifests:
        horizon_ms = m["spec"]["arrival"]["late"]["max_lateness_ms"]
        if "released_after" in m:
            found.add(("delayed", m["batch_id"], m["released_after"]))
        if versions[m["seq"]] > versions.get(m["seq"] - 1, versions[m["seq"]]):
            found.add(("drift", m["batch_id"], m["contract_version"]))
        lines = (root / m["files"][0]["path"]).read_text().splitlines()
        for row_no, line in enumerate(lines):
            earlier = seen.setdefault(line, (m["batch_id"], row_no))
            if earlier[0] != m["batch_id"]:
                found.add(("redelivered", m["batch_id"], row_no, *earlier))
                continue
            stamp = json.loads(line).get("event_timestamp")
            if isinstance(stamp, str) and stamp < m["interval_start"]:
                lateness = _ms(m["interval_start"]) - _ms(stamp)
                if 0 < lateness <= horizon_ms:
                    found.add(("late", m["batch_id"], row_no))
    return found


def _disclosed(ledger: list[dict], landed: set[str]) -> set[tuple]:
    """What the ledger says, of the batches whose files have landed (a delayed batch still
    waiting for its tick is pending; so is what a copy of it shows)."""
    disclosed: set[tuple] = set()
    for r in ledger:
        if r["batch_id"] not in landed:
            continue
        if r["condition"] == "late":
            disclosed.add(("late", r["batch_id"], r["row_no"]))
        elif r["condition"] == "redelivered" and r["original_batch_id"] in landed:
            disclosed.add(
                (
                    "redelivered",
                    r["batch_id"],
                    r["row_no"],
                    r["original_batch_id"],
                    r["original_row_no"],
                )
            )
        elif r["condition"] == "delayed":
            disclosed.add(("delayed", r["batch_id"], r["released_after_batch_id"]))
        elif r["condition"] == "drift":
            disclosed.add(("drift", r["batch_id"], r["contract_version"]))
    return disclosed


def _ms(stamp: str) -> int:
    from datetime import datetime

    from emugen.vocabulary import to_ms

    return to_ms(datetime.fromisoformat(stamp.replace("Z", "+00:00")))
