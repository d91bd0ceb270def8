"""Before a backfill writes: its estimate, a refusal when it does not fit, and --yes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import namedtuple
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from emugen.backfill.budget import Estimate, estimate, room
from emugen.backfill.plan import plan_backfill
from emugen.cli import main
from emugen.db.session import init_db, make_engine, read_session
from emugen.vocabulary import Stream
from tests.conftest import make_settings
from tests.disk_helpers import small_disk  # noqa: F401 - a fixture

START = datetime(2026, 1, 1, tzinfo=UTC)
Usage = namedtuple("Usage", "total used free")
NEEDS = Estimate(ticks=10, records=1_000, store_bytes=5_000_000, landing_bytes=2_000_000)


def batches_in(url: str) -> int:
    from sqlalchemy import func, select

    from emugen.db.models import BatchRow

    engine = make_engine(url)
    init_db(engine)
    with read_session(engine) as session:
        count = session.scalar(select(func.count()).select_from(BatchRow))
    engine.dispose()
    return count


def test_the_estimate_counts_the_plans_records_and_bytes_for_each_store_and_zone(tmp_path):
    settings = make_settings(
        mode="production", landing={"enabled": True, "root": str(tmp_path / "zone")}
    )
    plan = plan_backfill(
        settings, START, START + timedelta(hours=3), (Stream.companies, Stream.events)
    )
    needs = estimate(plan)
    assert needs.records == plan.records and needs.ticks == len(plan.ticks)
    assert 150 * needs.records < needs.landing_bytes < 1_000 * needs.records  # ~300 B a line
    assert needs.store_bytes > 2 * needs.landing_bytes
    done = {plan.ticks[0].batch_id}
    assert estimate(plan, done).ticks == len(plan.ticks) - 1  # what the store holds is not


def test_a_store_and_zone_that_share_a_filesystem_too_small_for_both_are_refused(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 0, 6_000_000))
    settings = make_settings(
        database_url=f"sqlite:///{tmp_path / 'e.db'}",
        landing={"enabled": True, "root": str(tmp_path / "zone")},
    )
    found = room(settings, NEEDS)
    assert found.short == [f"needs ~7.0 MB on {tmp_path}, 6.0 MB free"]  # 5 + 2, summed
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 0, 8_000_000))
    assert room(settings, NEEDS).short == []


def test_a_postgresql_store_and_an_object_store_zone_are_noted_not_checked(monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: pytest.fail("nothing to read"))
    settings = make_settings(
        database_url="postgresql://postgres@127.0.0.1:5432/test",
        landing={"enabled": True, "root": "s3://bucket/prefix"},
    )
    found = room(settings, NEEDS)
    assert found.short == []
    assert "postgresql server's free space cannot be read" in found.notes[0]
    assert "5.0 MB" in found.notes[0] and "s3://bucket/prefix" in found.notes[1]


def test_a_backfill_that_does_not_fit_its_disk_exits_2_before_writing_a_batch(tmp_path, small_disk):  # noqa: F811 - the fixture
    url = f"sqlite:///{small_disk.path / 'emugen.db'}"
    config = tmp_path / "emugen.yaml"
    config.write_text(
        f"database_url: {url}\nbroker_url: redis://127.0.0.1:1/0\nlanding: {{enabled: false}}\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "emugen",
            "backfill",
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2026-01-01T12:00:00Z",
            "--config",
            str(config),
            "--yes",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert "estimate: 60 ticks" in done.stdout
    error = done.stderr.strip()
    assert "\n" not in error and "Traceback" not in error
    assert "backfill does not fit: needs ~" in error and f" on {small_disk.path}, " in error
    assert "MB free; free space or split the range" in error
    assert batches_in(url) == 0


def _invoke(tmp_path, *extra: str):
    url = f"sqlite:///{tmp_path / 'emugen.db'}"
    config = tmp_path / "emugen.yaml"
    config.write_text(
        f"database_url: {url}\nbroker_url: redis://127.0.0.1:1/0\nlanding: {{enabled: false}}\n"
    )
    result = CliRunner().invoke(
        main,
        [
            "backfill",
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2026-01-01T02:00:00Z",
            "--config",
            str(config),
            *extra,
        ],
    )
    return result, url


def test_above_confirm_above_without_a_terminal_or_yes_exits_2_naming_yes(tmp_path):
    result, url = _invoke(tmp_path, "--confirm-above", "10")
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("emugen: backfill not started: it would write ")
    assert "records, more than --confirm-above 10" in last
    assert last.endswith("rerun with --yes to start it")
    assert batches_in(url) == 0


def test_yes_or_a_yes_at_a_terminal_goes_past_the_threshold_and_a_no_stops(tmp_path, monkeypatch):
    result, _ = _invoke(tmp_path, "--confirm-above", "10", "--yes")
    assert result.exit_code == 1 and "no broker answers" in result.output  # got past it
    result, _ = _invoke(tmp_path)  # two hours: far below the default 10,000,000
    assert result.exit_code == 1 and "no broker answers" in result.output
    from emugen.cli import backfill

    monkeypatch.setattr(backfill, "_interactive", lambda: True)
    runner = CliRunner()
    config = tmp_path / "emugen.yaml"
    args = [
        "backfill",
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2026-01-01T02:00:00Z",
        "--config",
        str(config),
        "--confirm-above",
        "10",
    ]
    declined = runner.invoke(main, args, input="n\n")
    assert declined.exit_code == 2 and "not confirmed" in declined.output
    accepted = runner.invoke(main, args, input="y\n")
    assert accepted.exit_code == 1 and "no broker answers" in accepted.output


def test_a_dry_run_prints_the_estimate(tmp_path):
    result, url = _invoke(tmp_path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "estimate: " in result.output and " records, store " in result.output
