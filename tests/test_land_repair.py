"""`emugen land verify` reports every damaged file and manifest, and `land repair` (and the
reaper) restore them from bronze, byte for byte."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from emugen.db.models import LandedFile, LandingFailure
from emugen.db.session import engine_for, init_db, read_session
from emugen.errors import LandingError
from emugen.pipeline.runner import run_pipeline
from emugen.settings import parse_settings
from emugen.sinks import audit, filesystem, lander, relander
from emugen.sinks.audit import verify
from tests.conftest import SIMULATED

EMUGEN = [sys.executable, "-m", "emugen"]


class Zone:
    """A SQLite store with ten landed batches, its config file and the zone's original bytes."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "zone"
        self.db = tmp_path / "emugen.db"
        self.config = tmp_path / "emugen.yaml"
        self.config.write_text(
            f"database_url: sqlite:///{self.db}\nlanding: {{root: {self.root}}}\n"
        )
        self.engine = engine_for(f"sqlite:///{self.db}")
        init_db(self.engine)
        self.settings = parse_settings(
            {
                "database_url": f"sqlite:///{self.db}",
                "clock": SIMULATED,
                "landing": {"root": str(self.root)},
            },
            env=False,
        )
        run_pipeline(self.engine, self.settings, 5)
        self.original = self.files()

    def files(self) -> dict[Path, bytes]:
        return {p: p.read_bytes() for p in sorted(self.root.rglob("*")) if p.is_file()}

    def landed(self) -> list[LandedFile]:
        with read_session(self.engine) as session:
            rows = list(session.scalars(select(LandedFile).order_by(LandedFile.batch_id)))
            session.expunge_all()
        return rows

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*EMUGEN, "land", *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "EMUGEN_CONFIG": str(self.config)},
        )


@pytest.fixture
def zone(tmp_path: Path) -> Zone:
    return Zone(tmp_path)


def _damage(zone: Zone) -> dict[str, str]:
    """Every kind of damage, each to another batch; what verify must say of each batch."""
    rows = zone.landed()
    assert len(rows) == 10
    data = [zone.root / r.path for r in rows]
    manifest = [zone.root / r.manifest_path for r in rows]
    data[0].unlink()
    data[1].write_bytes(data[1].read_bytes()[:7])
    data[2].write_bytes(data[2].read_bytes() + b'{"appended": true}\n')
    manifest[3].unlink()
    text = manifest[4].read_text()
    manifest[4].write_text(text.replace(rows[4].sha256, "0" * 64))
    manifest[5].write_text("{not json")
    manifest[6].write_text('{"files": 5}')
    manifest[7].write_text("[]")
    manifest[8].write_bytes(b"\xff\xfe\x00 not utf-8")
    return {
        rows[0].batch_id: f"{rows[0].path} is missing",
        rows[1].batch_id: f"{rows[1].path} is 7 bytes, landed as {rows[1].bytes} (truncated)",
        rows[2].batch_id: "(longer than landed)",
        rows[3].batch_id: f"manifest {rows[3].manifest_path} is missing",
        rows[4].batch_id: f"does not list {rows[4].path} with its sha256",
        rows[5].batch_id: "is not JSON",
        rows[6].batch_id: "has no list of files",
        rows[7].batch_id: "is a JSON list, not an object",
        rows[8].batch_id: "is not UTF-8 text",
    }


def test_verify_reports_every_damaged_file_and_manifest_in_one_run_without_a_traceback(zone):
    expected = _damage(zone)
    result = zone.cli("verify")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for batch_id, what in expected.items():
        assert any(line.strip().startswith(batch_id) and what in line for line in lines), (
            batch_id,
            what,
            result.stdout,
        )
    assert "10 batches checked, 9 PROBLEM(S) in 9 batch(es)" in result.stdout


def test_repair_lands_every_damaged_batch_again_with_its_original_bytes(zone):
    _damage(zone)
    repaired = zone.cli("repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "landed 9 of 9 damaged or missing batch(es)" in repaired.stdout
    assert "10 batches checked, OK" in repaired.stdout
    assert zone.cli("verify").returncode == 0
    assert zone.files() == zone.original


def test_a_batch_never_landed_is_repaired_as_well(zone):
    victim = zone.landed()[0]
    (zone.root / victim.path).unlink()
    with zone.engine.begin() as conn:  # what a crash between bronze and the file leaves
        conn.execute(LandedFile.__table__.delete().where(LandedFile.batch_id == victim.batch_id))
    assert f"{victim.batch_id}: not landed" in zone.cli("verify").stdout
    assert zone.cli("repair").returncode == 0
    assert zone.files() == zone.original


def test_the_reaper_lands_damaged_batches_again_slice_by_slice(zone, monkeypatch):
    _damage(zone)
    monkeypatch.setattr(relander, "AUDIT_BATCHES", 3)
    monkeypatch.setattr(relander._AuditCursor, "after", None)
    relanded: list[str] = []
    for _ in range(4):  # 10 batches, 3 per run: the whole zone in four runs
        relanded += relander.reland_damaged(zone.engine, zone.settings.landing)
    assert len(relanded) == 9 and len(set(relanded)) == 9
    assert verify(zone.engine, zone.settings.landing).ok
    assert zone.files() == zone.original


def test_a_reaper_audit_never_lands_a_batch_that_may_still_be_landing(zone):
    victim = zone.landed()[0]
    with zone.engine.begin() as conn:
        conn.execute(LandedFile.__table__.delete().where(LandedFile.batch_id == victim.batch_id))
    relander._AuditCursor.after = None
    assert relander.reland_damaged(zone.engine, zone.settings.landing) == []


def test_a_refused_read_says_it_could_not_read_not_write():
    class Refusing:
        protocol = "s3"

        def cat_file(self, path: str) -> bytes:
            raise ConnectionError("Could not connect to the endpoint URL")

    zone = filesystem.Zone(Refusing(), "s3://bucket/zone", "bucket/zone")
    with pytest.raises(LandingError) as caught:
        filesystem.read(zone, "events/x.jsonl")
    message = str(caught.value)
    assert "cannot read events/x.jsonl" in message and "write" not in message


@pytest.mark.parametrize(
    ("root", "package"), [("gs://bucket/zone", "gcsfs"), ("abfs://container/zone", "adlfs")]
)
def test_a_store_without_its_package_names_that_package_not_the_s3_extra(root, package):
    pytest.importorskip("fsspec")
    try:
        __import__(package)
        pytest.skip(f"{package} is installed here")
    except ImportError:
        pass
    with pytest.raises(LandingError) as caught:
        filesystem.open_zone(root)
    assert f"pip install '{package}'" in str(caught.value)
    assert "emugen[s3]" not in str(caught.value)


def test_a_batch_held_off_by_the_cool_down_records_its_own_reason(zone, monkeypatch):
    events = next(r for r in zone.landed() if r.batch_id.startswith("events"))
    other = "landing root x: cannot write companies/date=2026-01-01/hour=00/companies-1.jsonl"
    monkeypatch.setitem(lander._failed_at, zone.settings.landing.root, (1e12, other))
    monkeypatch.setattr(lander.time, "monotonic", lambda: 1e12 + 2.0)
    assert lander.land(zone.engine, zone.settings.landing, events.batch_id) is None
    with read_session(zone.engine) as session:
        error = session.scalars(
            select(LandingFailure.error).where(LandingFailure.batch_id == events.batch_id)
        ).one()
    assert error.startswith(
        f"not tried: landing root {zone.settings.landing.root} failed 2.0 s "
        "ago, holding off 10 s (that failure: landing root x: "
    )


def test_the_audit_reads_a_bounded_slice_and_says_where_to_go_on(zone):
    first, after = audit.audit(zone.engine, zone.settings.landing, limit=4)
    assert first.checked == 4 and after is not None
    rest, end = audit.audit(zone.engine, zone.settings.landing, after=after)
    assert rest.checked == 6 and end is None
