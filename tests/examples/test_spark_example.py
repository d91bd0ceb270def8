"""The Spark reference consumer (examples/spark) run as a subprocess on a store's landing zone.

Its silver and quarantine are compared with the store's truth directly: every injected defect
quarantined with emugen's reason, no clean record rejected, none lost; its gold equals emugen's.
Weakened (`--weaken`), exactly the invalid_enum records reach silver. Spark needs Java: these
tests skip without it (or without pyspark) locally and fail when CI is set.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from emugen.db.models import GoldCompanyWindow, GoldRegionWindow
from emugen.db.session import init_db, make_engine, read_session
from emugen.pipeline.runner import run_pipeline
from tests.conftest import make_settings
from tests.examples.spark_helpers import JOB, WAIT, job, spark_or_skip, wait_for
from tests.examples.store_zone import Truth, land_batch, landed_order, truth
from tests.fleet_helpers import write_config

ROUNDS, SIZE, RATE = 4, 100, 0.3  # 800 records, ~240 defects, every type in both streams

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


class Zone:
    """A store holding ROUNDS rounds of both streams, and the landing folder fed from it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.engine = make_engine(f"sqlite:///{folder / 'emugen.db'}")
        init_db(self.engine)
        quality = {"quality": {"rate": RATE}}
        run_pipeline(
            self.engine, make_settings(companies=quality, events=quality), ROUNDS, size=SIZE
        )
        self.batches = landed_order(self.engine)
        self.truth: Truth = truth(self.engine)

    def land(self, root: Path, batch_ids: list[str]) -> None:
        for batch_id in batch_ids:
            land_batch(self.engine, root, batch_id)

    def gold(self) -> tuple[set[tuple], set[tuple]]:
        with read_session(self.engine) as session:
            companies = {
                (
                    r.company_id,
                    r.window_start_ms,
                    r.events,
                    r.start_driving,
                    r.stopped_driving,
                    r.delivered,
                    r.active_drivers,
                )
                for r in session.query(GoldCompanyWindow)
            }
            regions = {
                (r.region, r.window_start_ms, r.companies_onboarded, r.events, r.deliveries)
                for r in session.query(GoldRegionWindow)
            }
        return companies, regions


# session-scoped: built once even when the tests of another module run between this one's
@pytest.fixture(scope="session")
def zone(tmp_path_factory: pytest.TempPathFactory) -> Zone:
    spark_or_skip()
    made = Zone(tmp_path_factory.mktemp("store"))
    for stream in ("companies", "events"):
        kinds = {d for (b, _), d in made.truth.defects.items() if b.startswith(stream)}
        assert "invalid_enum" in kinds, f"the seeded store has no invalid_enum {stream}"
    return made


# -- reading the job's output --------------------------------------------------------------


def _rows(out: Path, table: str) -> list[dict]:
    """Every row of a published table (only renamed-into-place epoch folders are read)."""
    import pyarrow.parquet as pq

    rows: list[dict] = []
    for part in sorted((out / table).glob("*/part-*.parquet")):
        rows.extend(pq.read_table(part).to_pylist())
    return rows


def _keyed(rows: list[dict]) -> dict[tuple[str, int], dict]:
    keyed = {(r["batch_id"], r["row_no"]): r for r in rows}
    assert len(keyed) == len(rows), "a (batch_id, row_no) appears twice in one output"
    return keyed


def _outputs(out: Path) -> tuple[dict, dict]:
    silver = _keyed(_rows(out, "silver/companies") + _rows(out, "silver/events"))
    return silver, _keyed(_rows(out, "quarantine"))


# -- the comparison with the truth ---------------------------------------------------------


def _misjudged(zone: Zone, silver: dict, quarantine: dict, escaping: set[str]) -> list[str]:
    """Every way the outputs differ from the truth, except defects of `escaping` in silver."""
    problems = []
    for key, stream in zone.truth.bronze.items():
        expected = zone.truth.defects.get(key)
        if key in silver and key in quarantine:
            problems.append(f"{key} is both kept and rejected")
        elif key in quarantine:
            got = quarantine[key]["reason"]
            if expected is None:
                problems.append(f"clean {stream} record {key} rejected as {got}")
            elif got != expected:
                problems.append(f"{key} ({expected}) rejected as {got}")
        elif key in silver:
            if expected is not None and expected not in escaping:
                problems.append(f"{key} ({expected}) escaped into silver")
        else:
            problems.append(f"{key} is neither kept nor rejected")
    return problems


def test_the_spark_job_catches_every_injected_defect_as_files_land_while_it_runs(zone, tmp_path):
    landing, out = tmp_path / "landing", tmp_path / "out"
    half = len(zone.batches) // 2
    zone.land(landing, zone.batches[:half])
    log = tmp_path / "out.log"

    def reached(batches: list[str]) -> Callable[[], bool]:
        """The job has reported these batches done (silver, quarantine and gold)."""

        def check() -> bool:
            reported = " ".join(
                line for line in log.read_text(errors="replace").splitlines() if " epoch " in line
            )
            return all(b in reported for b in batches)

        return check

    with job(out, landing, "--trigger-seconds", "2", "--max-files", "16") as process:
        wait_for(reached(zone.batches[:half]), process, "output for the first half")
        zone.land(landing, zone.batches[half:])  # the source must notice files landing later
        wait_for(reached(zone.batches), process, "output for the second half")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=WAIT) == 0

    silver, quarantine = _outputs(out)
    assert len(silver) + len(quarantine) == len(zone.truth.bronze)  # bronze's row count
    assert _misjudged(zone, silver, quarantine, escaping=set()) == []
    assert {r["reason"] for r in quarantine.values()} == set(zone.truth.defects.values())

    companies, regions = zone.gold()
    assert companies and regions
    assert _gold_companies(out) == companies
    assert _gold_regions(out) == regions


def _gold_rows(out: Path, table: str) -> list[dict]:
    """Gold tables are partitioned by window_start_ms (the folder name carries the value)."""
    import pyarrow.parquet as pq

    rows = []
    for part in sorted((out / table).glob("window_start_ms=*/part-*.parquet")):
        start = int(part.parent.name.split("=", 1)[1])
        rows.extend({**r, "window_start_ms": start} for r in pq.read_table(part).to_pylist())
    return rows


def _gold_companies(out: Path) -> set[tuple]:
    return {
        (
            r["company_id"],
            r["window_start_ms"],
            r["events"],
            r["start_driving"],
            r["stopped_driving"],
            r["delivered"],
            r["active_drivers"],
        )
        for r in _gold_rows(out, "gold/company_window")
    }


def _gold_regions(out: Path) -> set[tuple]:
    return {
        (r["region"], r["window_start_ms"], r["companies_onboarded"], r["events"], r["deliveries"])
        for r in _gold_rows(out, "gold/region_window")
    }


@pytest.fixture(scope="session")
def weakened(zone: Zone, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The job's output with --weaken, run once (--once) on every batch of the zone."""
    folder = tmp_path_factory.mktemp("weakened")
    landing, out = folder / "landing", folder / "out"
    zone.land(landing, zone.batches)
    with job(out, landing, "--once", "--weaken", "--max-files", "16") as process:
        assert process.wait(timeout=WAIT) == 0
    return out


def test_the_weakened_spark_job_lets_exactly_the_invalid_enum_records_into_silver(zone, weakened):
    silver, quarantine = _outputs(weakened)
    assert _misjudged(zone, silver, quarantine, escaping={"invalid_enum"}) == []
    invalid_enum = {k for k, reason in zone.truth.defects.items() if reason == "invalid_enum"}
    escaped = {k for k in silver if k in zone.truth.defects}
    assert escaped == invalid_enum


def test_emugen_grade_names_every_record_the_weakened_job_let_escape(zone, weakened, tmp_path):
    config = write_config(tmp_path / "emugen.yaml", f"sqlite:///{zone.folder / 'emugen.db'}")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "emugen",
            "grade",
            "--kept",
            str(weakened / "silver"),
            "--rejected",
            str(weakened / "quarantine"),
            "--json",
            "--examples",
            "10000",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # the CI gate trips
    grade = json.loads(done.stdout)
    named = {(e["batch_id"], e["row_no"]) for e in grade["examples"]}
    invalid_enum = {k for k, reason in zone.truth.defects.items() if reason == "invalid_enum"}
    assert named == invalid_enum
    assert {(e["miss"], e["defect"]) for e in grade["examples"]} == {("escaped", "invalid_enum")}
    assert grade["precision"] == 1


def test_the_spark_job_refuses_a_landing_root_that_is_not_a_folder(tmp_path):
    if importlib.util.find_spec("pyspark") is None:  # no JVM needed: it fails before Spark
        spark_or_skip()
    done = subprocess.run(
        [sys.executable, str(JOB), str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "nowhere" in done.stderr and "landing.root" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_batch_without_its_manifest_stops_the_job_with_one_line_naming_it(zone, tmp_path):
    landing, out = tmp_path / "landing", tmp_path / "out"
    zone.land(landing, zone.batches[:2])
    missing = landing / "_manifests" / "events" / f"{zone.batches[1]}.json"
    assert zone.batches[1].startswith("events") and missing.exists()
    missing.unlink()
    with job(out, landing, "--once", "--manifest-wait", "1") as process:
        assert process.wait(timeout=WAIT) == 2
    said = (tmp_path / "out.log").read_text(errors="replace")
    assert f"job.py: the streaming query stopped: no manifest {missing}" in said
    assert "Traceback" not in said and "\tat org.apache" not in said
    assert not (out / "silver").exists()  # nothing of the epoch was published
