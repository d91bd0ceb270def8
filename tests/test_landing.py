"""The landing zone on a local root: layout, bytes, manifests, failures, re-landing, pruning."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from emugen.cli import main
from emugen.db.models import BatchRow, BronzeRecord, LandedFile, LandingFailure
from emugen.db.session import read_session
from emugen.errors import ConfigError
from emugen.pipeline.retention import prune
from emugen.pipeline.runner import run_pipeline
from emugen.settings import parse_settings
from emugen.sinks import filesystem
from emugen.sinks.audit import verify
from emugen.sinks.lander import land
from emugen.sinks.relander import reland_missing
from emugen.status.report import format_status, status
from tests.conftest import make_settings

DIRTY = {"quality": {"rate": 0.3}}


def landing_settings(root: Path | str, fmt: str = "jsonl", **landing):
    return make_settings(
        landing={"root": str(root), "format": fmt, **landing}, companies=DIRTY, events=DIRTY
    )


def bronze(engine, batch_id: str) -> list[str]:
    with read_session(engine) as session:
        return list(
            session.scalars(
                select(BronzeRecord.payload)
                .where(BronzeRecord.batch_id == batch_id)
                .order_by(BronzeRecord.row_no)
            )
        )


def landed(engine) -> dict[str, LandedFile]:
    with read_session(engine) as session:
        rows = session.scalars(select(LandedFile)).all()
        session.expunge_all()
    return {r.batch_id: r for r in rows}


def batch_rows(engine) -> list[BatchRow]:
    with read_session(engine) as session:
        rows = session.scalars(select(BatchRow).order_by(BatchRow.batch_id)).all()
        session.expunge_all()
    return list(rows)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_every_batch_lands_as_jsonl_whose_line_i_is_bronze_row_i(engine, tmp_path):
    root = tmp_path / "zone"
    run_pipeline(engine, landing_settings(root), 2)
    files = landed(engine)
    batches = batch_rows(engine)
    assert sorted(files) == [b.batch_id for b in batches]
    for b in batches:
        start = b.interval_start
        expected = f"{b.stream}/date={start:%Y-%m-%d}/hour={start:%H}/{b.batch_id}.jsonl"
        assert files[b.batch_id].path == expected
        text = (root / expected).read_text(encoding="utf-8")
        assert text.splitlines() == bronze(engine, b.batch_id)
        assert files[b.batch_id].rows == b.record_count


def test_parquet_carries_raw_text_row_numbers_and_the_tick(engine, tmp_path):
    import pyarrow.parquet as pq

    root = tmp_path / "zone"
    run_pipeline(engine, landing_settings(root, "parquet"), 1)
    for b in batch_rows(engine):
        table = pq.read_table(root / landed(engine)[b.batch_id].path)
        assert table.column_names == ["batch_id", "row_no", "payload", "scheduled_at"]
        assert table.column("payload").to_pylist() == bronze(engine, b.batch_id)
        assert table.column("row_no").to_pylist() == list(range(b.record_count))
        assert set(table.column("batch_id").to_pylist()) == {b.batch_id}
        assert set(table.column("scheduled_at").to_pylist()) == {b.scheduled_at}


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_landing_a_batch_again_writes_the_same_bytes_to_the_same_name(engine, tmp_path, fmt):
    root = tmp_path / "zone"
    settings = landing_settings(root, fmt)
    run_pipeline(engine, settings, 1)
    before = {p: p.read_bytes() for p in files_under(root)}
    for b in batch_rows(engine):
        land(engine, settings.landing, b.batch_id)  # a re-delivered task
    assert {p: p.read_bytes() for p in files_under(root)} == before


def test_a_deleted_file_is_restored_byte_identically_by_the_reaper(engine, tmp_path):
    root = tmp_path / "zone"
    settings = landing_settings(root, "parquet")
    run_pipeline(engine, settings, 1)
    victim = next(iter(landed(engine).values()))
    original = (root / victim.path).read_bytes()
    (root / victim.path).unlink()
    assert not verify(engine, settings.landing).ok
    with read_session(engine) as session:  # what a crash before the file write leaves
        session.execute(LandedFile.__table__.delete().where(LandedFile.batch_id == victim.batch_id))
        session.commit()
    assert reland_missing(engine, settings.landing, timedelta(0)) == [victim.batch_id]
    assert (root / victim.path).read_bytes() == original
    assert verify(engine, settings.landing).ok


def test_the_manifest_follows_the_file_and_holds_its_sha256_but_never_the_truth(engine, tmp_path):
    root = tmp_path / "zone"
    run_pipeline(engine, landing_settings(root), 1)
    for b in batch_rows(engine):
        row = landed(engine)[b.batch_id]
        manifest = json.loads((root / row.manifest_path).read_text())
        assert row.manifest_path == f"_manifests/{b.stream}/{b.batch_id}.json"
        data = (root / row.path).read_bytes()
        assert manifest["files"] == [
            {
                "path": row.path,
                "rows": b.record_count,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        ]
        assert manifest["spec"] == json.loads(b.spec)
        assert manifest["record_count"] == b.record_count
    for path in files_under(root):
        text = path.read_text(encoding="utf-8")
        assert "expected_reason" not in text and "injected" not in text, path


def test_a_write_is_renamed_into_place_from_a_hidden_temporary(tmp_path, monkeypatch):
    zone = filesystem.open_zone(str(tmp_path))
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append((Path(src).name, Path(dst).name, Path(src).read_bytes()))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    filesystem.write(zone, "events/date=2026-01-01/hour=00/b.jsonl", b"{}\n")
    [(staged, final, data)] = seen
    assert staged.startswith(".b.jsonl.") and staged.endswith(".tmp")  # Spark, DuckDB skip it
    assert (final, data) == ("b.jsonl", b"{}\n")
    assert [p.name for p in files_under(tmp_path)] == ["b.jsonl"]


def test_an_unwritable_root_is_recorded_and_the_batch_still_reaches_gold(engine, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the landing folder should be")
    settings = landing_settings(blocker / "zone")
    run_pipeline(engine, settings, 1)
    assert {b.status for b in batch_rows(engine)} == {"gold"}
    assert landed(engine) == {}
    with read_session(engine) as session:
        failures = session.scalars(select(LandingFailure)).all()
        report = status(session)
    assert len(failures) == 2
    assert str(blocker / "zone") in failures[0].error and "landing.root" in failures[0].error
    assert report["landing"]["failing_batches"] == 2
    assert "NOT LANDED" in format_status(report)

    blocker.unlink()  # the cause is gone: the reaper lands both
    assert len(reland_missing(engine, settings.landing, timedelta(0))) == 2
    with read_session(engine) as session:
        assert session.scalars(select(LandingFailure)).all() == []
    assert verify(engine, settings.landing).ok


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through a read-only mode")
def test_a_read_only_folder_is_a_landing_error_naming_the_fix(engine, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    run_pipeline(engine, landing_settings(locked), 1)
    with read_session(engine) as session:
        error = session.scalars(select(LandingFailure.error)).first()
    assert "writable" in error and str(locked) in error


def test_retention_prunes_landed_files_with_their_batches(engine, tmp_path):
    from datetime import UTC, datetime

    root = tmp_path / "zone"
    settings = landing_settings(root)
    run_pipeline(engine, settings, 3)
    later = datetime.now(UTC) + timedelta(days=2)
    result = prune(engine, timedelta(days=1), now=later, landing=settings.landing)
    kept = {b.batch_id for b in batch_rows(engine)}
    assert result.batches == 4 and len(kept) == 2  # the newest batch of each stream stays
    assert set(landed(engine)) == kept
    names = {p.stem for p in files_under(root)}
    assert names == kept  # data files and manifests of pruned batches are gone
    assert verify(engine, settings.landing).ok


def test_a_switched_off_landing_zone_writes_nothing(engine, tmp_path):
    run_pipeline(engine, landing_settings(tmp_path / "zone", enabled=False), 1)
    assert not (tmp_path / "zone").exists() and landed(engine) == {}


@pytest.mark.parametrize(
    ("landing", "expected"),
    [
        ({"format": "csv"}, "landing.format: got 'csv'; input should be 'jsonl' or 'parquet'"),
        ({"root": "nope://bucket"}, "landing.root: got 'nope://bucket': unknown storage protocol"),
        ({"root": ""}, "landing.root: got ''"),
        ({"enabled": "sometimes"}, "landing.enabled: got 'sometimes'"),
        ({"colour": "red"}, "landing.colour: unknown key; allowed here: enabled, root, format"),
    ],
)
def test_an_invalid_landing_section_names_field_value_and_what_is_allowed(landing, expected):
    with pytest.raises(ConfigError) as caught:
        parse_settings({"landing": landing}, env=False)
    assert expected in str(caught.value)


def test_the_landing_root_comes_from_the_environment_when_set(monkeypatch):
    monkeypatch.setenv("EMUGEN_LANDING_ROOT", "s3://bucket/zone")
    settings = parse_settings({"landing": {"format": "parquet"}})
    assert (settings.landing.root, settings.landing.format) == ("s3://bucket/zone", "parquet")
    assert parse_settings({}).landing.root == "s3://bucket/zone"


def test_landing_settings_do_not_change_the_data_fingerprint():
    assert (
        parse_settings({"landing": {"root": "/x", "format": "parquet"}}, env=False).fingerprint()
        == parse_settings({}, env=False).fingerprint()
    )


def test_land_verify_exits_1_naming_a_missing_file_and_0_once_repaired(tmp_path):
    db = tmp_path / "emugen.db"
    config = tmp_path / "emugen.yaml"
    root = tmp_path / "zone"
    config.write_text(f"database_url: sqlite:///{db}\nlanding: {{root: {root}}}\n")
    from emugen.db.session import engine_for, init_db

    engine = engine_for(f"sqlite:///{db}")
    init_db(engine)
    settings = parse_settings(
        {"database_url": f"sqlite:///{db}", "landing": {"root": str(root)}}, env=False
    )
    run_pipeline(engine, settings, 1)
    runner = CliRunner()
    ok = runner.invoke(main, ["land", "verify", "--config", str(config)])
    assert ok.exit_code == 0 and "2 batches checked, OK" in ok.output
    victim = next(iter(landed(engine).values()))
    (root / victim.path).unlink()
    bad = runner.invoke(main, ["land", "verify", "--config", str(config)])
    assert bad.exit_code == 1 and f"{victim.path} is missing" in bad.output


def test_duckdb_reads_the_zone_with_hive_partitions_and_counts_what_bronze_holds(engine, tmp_path):
    import duckdb

    run_pipeline(engine, landing_settings(tmp_path / "jsonl"), 2)
    as_parquet = landing_settings(tmp_path / "parquet", "parquet").landing
    batches = batch_rows(engine)
    for b in batches:
        land(engine, as_parquet, b.batch_id)
    con = duckdb.connect()
    for stream in ("companies", "events"):
        mine = [b for b in batches if b.stream == stream]
        jsonl = con.sql(
            f"select count(*), min(date), count(distinct filename) from read_json("
            f"'{tmp_path}/jsonl/{stream}/**/*.jsonl', hive_partitioning=true, "
            "filename=true)"
        ).fetchall()[0]
        parquet = con.sql(
            f"select count(*), count(distinct batch_id) from read_parquet("
            f"'{tmp_path}/parquet/{stream}/**/*.parquet', "
            "hive_partitioning=true)"
        ).fetchall()[0]
        assert jsonl[0] == parquet[0] == sum(b.record_count for b in mine)
        assert jsonl[1] == mine[0].interval_start.date()  # the date= partition is a column
        assert parquet[1] == jsonl[2] == len(mine)


def test_clean_removes_the_landing_files_with_the_layers(engine, tmp_path):
    from emugen.db.session import write_session
    from emugen.fleet.control import clean, set_paused

    root = tmp_path / "zone"
    settings = landing_settings(root)
    run_pipeline(engine, settings, 1)
    with write_session(engine) as session:
        set_paused(session, True)
    with write_session(engine) as session:
        cleaned = clean(session, settings.landing)
    assert cleaned.removed["landing files"] == 4  # two data files, two manifests
    assert files_under(root) == [] and landed(engine) == {}


def test_health_is_degraded_naming_the_landing_root_until_the_batch_is_landed(engine, tmp_path):
    from emugen.status.health import health

    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    settings = landing_settings(blocker)
    run_pipeline(engine, settings, 1)
    config = {"valid": True, "problems": [], "mode": "emulated", "streams": {}}
    probe = {"broker": {"ok": True}, "workers": {"ok": True}, "queues": {}}
    with read_session(engine) as session:
        report = health(session, config, probe)
    assert report["status"] == "degraded"
    assert report["landing"]["failing_batches"] == 2
    [reason] = [r for r in report["reasons"] if "landing zone" in r]
    assert str(blocker) in reason and "landing.root" in reason
    blocker.unlink()
    reland_missing(engine, settings.landing, timedelta(0))
    with read_session(engine) as session:
        report = health(session, config, probe)
    assert report["landing"] == {"files": 2, "failing_batches": 0, "last_error": None}
    assert not [r for r in report["reasons"] if "landing zone" in r]


def test_deliveries_of_one_batch_landing_at_once_all_succeed_with_one_row(engine, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    root = tmp_path / "zone"
    settings = landing_settings(root, "parquet")
    run_pipeline(engine, landing_settings(root, enabled=False), 1)
    batch_id = batch_rows(engine)[-1].batch_id
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: land(engine, settings.landing, batch_id), range(8)))
    assert all(r is not None for r in results)
    assert {r.sha256 for r in results} == {landed(engine)[batch_id].sha256}
    with read_session(engine) as session:
        assert session.scalars(select(LandingFailure)).all() == []
    assert [p.name for p in files_under(root) if p.name.startswith(".")] == []
