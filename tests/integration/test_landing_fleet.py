"""The landing zone under the real fleet: redis-server, `celery worker` and `celery beat`.

Every batch in bronze ends with exactly one data file and one manifest; a reader scanning the
zone in a tight loop never parses a partial file; a worker killed with SIGKILL between the
bronze commit and the file write leaves no batch without its file once the reaper has run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from emugen.db.models import BatchRow, LandedFile
from emugen.db.session import read_session
from emugen.settings import parse_settings
from emugen.sinks.audit import verify
from emugen.sinks.lander import FAULT_DELAY_ENV, bronze_lines
from tests.integration.conftest import Fleet, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.slow]

QUICK_RECOVERY = {"stuck_after": 3, "reaper_interval": 1}


def with_landing(fleet: Fleet, root: Path, fmt: str) -> None:
    fleet.write_raw(lambda data: data.update(landing={"root": str(root), "format": fmt}))


def landing_of(root: Path, fmt: str):  # noqa: ANN201 - the Landing settings of the test
    return parse_settings({"landing": {"root": str(root), "format": fmt}}, env=False).landing


def parse(path: Path) -> int:
    """Rows in a data file, parsed as a consumer would; raises on a partial file."""
    data = path.read_bytes()
    if path.suffix == ".parquet":
        import io

        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data)).num_rows
    if not data:
        return 0  # an events batch before any company landed holds no records
    assert data.endswith(b"\n"), f"{path.name} does not end with a newline: partial?"
    lines = data.decode("utf-8").splitlines()
    for line in lines:
        json.loads(line)
    return len(lines)


class Reader(threading.Thread):
    """Scans the zone as Spark's and DuckDB's file sources do (names starting with '.' or
    '_' skipped) and parses every file it sees, until stopped."""

    def __init__(self, root: Path) -> None:
        super().__init__(daemon=True)
        self.root, self.halt = root, threading.Event()
        self.parsed, self.problems = 0, []

    def run(self) -> None:
        while not self.halt.is_set():
            for path in list(self.root.rglob("*")):
                relative = path.relative_to(self.root).parts
                if any(part.startswith((".", "_")) for part in relative) or path.is_dir():
                    continue
                try:
                    parse(path)
                    self.parsed += 1
                except FileNotFoundError:
                    continue  # replaced by a re-delivered write between listing and opening
                except Exception as exc:  # noqa: BLE001 - every failure to parse is the finding
                    self.problems.append(f"{path.name}: {type(exc).__name__}: {exc}")


def assert_one_file_and_manifest_per_batch(fleet: Fleet, root: Path, fmt: str) -> int:
    engine = fleet.engine()
    with read_session(engine) as session:
        batches = list(session.scalars(select(BatchRow.batch_id)))
        rows = {r.batch_id: r for r in session.scalars(select(LandedFile))}
        lines = {b: bronze_lines(session, b) for b in batches}
    assert sorted(rows) == sorted(batches), "a batch in bronze has no landed file"
    for batch_id in batches:
        data_files = [p for p in root.rglob(f"{batch_id}.*") if "_manifests" not in p.parts]
        manifests = list((root / "_manifests").rglob(f"{batch_id}.json"))
        assert len(data_files) == 1 and len(manifests) == 1, (batch_id, data_files, manifests)
        data = data_files[0].read_bytes()
        listed = json.loads(manifests[0].read_text())["files"]
        assert listed[0]["sha256"] == hashlib.sha256(data).hexdigest() == rows[batch_id].sha256
        assert parse(data_files[0]) == len(lines[batch_id])
        if fmt == "jsonl":
            assert data.decode().splitlines() == lines[batch_id]
    assert not [p for p in root.rglob(".*")], "a temporary file was left behind"
    assert verify(engine, landing_of(root, fmt)).ok
    return len(batches)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_every_batch_the_fleet_lands_has_one_file_and_manifest_and_no_reader_sees_a_partial(
    fleet, fmt
):
    root = fleet.folder / "zone"
    fleet.write(interval=0.5, size=(200, 2000))
    with_landing(fleet, root, fmt)
    root.mkdir()
    reader = Reader(root)
    reader.start()
    worker, beat = fleet.start()
    wait_for(lambda: len(fleet.batches()) >= 12, 60, "12 batches")
    fleet.stop(beat)
    fleet.settle(timeout=60)
    wait_for(
        lambda: len(list(root.rglob(f"*.{fmt}"))) == len(fleet.batches()), 20, "every batch's file"
    )
    reader.halt.set()
    reader.join(10)

    landed = assert_one_file_and_manifest_per_batch(fleet, root, fmt)
    assert reader.problems == []
    assert reader.parsed >= landed  # it saw every file at least once, whole


def test_a_worker_killed_between_bronze_commit_and_file_write_leaves_no_batch_unlanded(
    fleet, monkeypatch
):
    root = fleet.folder / "zone"
    fleet.write(interval=1, size=(20, 40), fleet=QUICK_RECOVERY)
    with_landing(fleet, root, "jsonl")
    # the worker sleeps between its bronze commit and the file write (test hook), so the kill
    # lands inside that window every time
    monkeypatch.setenv(FAULT_DELAY_ENV, "60")
    worker, beat = fleet.start()
    monkeypatch.delenv(FAULT_DELAY_ENV)
    held = wait_for(
        lambda: re.search(r"waiting 60 s before writing (\S+)", worker.text()),
        30,
        "the worker inside the window between bronze commit and file write",
    )
    first = next(b for b in fleet.batches() if b.batch_id == held[1])
    children = fleet.children(worker)
    os.kill(worker.pid, signal.SIGKILL)
    for pid in children:  # the pool child holding the task dies too, as under the OOM killer
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    worker.process.wait(5)
    assert not root.exists() or not list(root.rglob(f"{first.batch_id}.jsonl"))

    replacement = fleet.start_worker("worker2")
    fleet.wait_ready(replacement, "ready.")
    # well inside the broker's visibility timeout: the reaper, not a redelivery, lands it
    wait_for(
        lambda: f"{first.batch_id} had no landing file; landed it" in replacement.text(),
        30,
        f"the reaper to land {first.batch_id}",
    )
    wait_for(lambda: sum(b.status == "gold" for b in fleet.batches()) >= 6, 40, "6 batches in gold")
    fleet.stop(beat)
    fleet.settle(timeout=30)
    wait_for(
        lambda: verify(fleet.engine(), landing_of(root, "jsonl")).ok,
        20,
        "every batch landed and verified",
    )
    assert_one_file_and_manifest_per_batch(fleet, root, "jsonl")
