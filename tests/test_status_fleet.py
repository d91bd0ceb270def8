"""`emugen status` tells "no fleet running" from "running" by beat's lease on the broker, never
by the batches a store holds (an in-process `pipeline run` fills a store with no fleet at all)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from emugen.cli import main
from emugen.errors import BrokerError
from emugen.fleet import broker
from emugen.fleet.beat_lease import BeatLease, read_lease
from emugen.fleet.broker import ensure_broker, fast_client, free_port
from emugen.status.report import format_status
from tests.fleet_helpers import write_config


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[str]:
    try:
        broker.redis_binary()
    except BrokerError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {exc}")
        pytest.skip(str(exc))
    url = f"redis://127.0.0.1:{free_port()}/0"
    started = ensure_broker(url, tmp_path / "redis", tmp_path / "redis.log")
    assert started is not None
    try:
        yield url
    finally:
        started.stop()


def _status(config: Path) -> tuple[str, dict]:
    runner = CliRunner()
    env = {"EMUGEN_CONFIG": None, "EMUGEN_BROKER_URL": None, "EMUGEN_DATABASE_URL": None}
    text = runner.invoke(main, ["status", "--config", str(config)], env=env)
    assert text.exit_code == 0, text.output
    data = runner.invoke(main, ["status", "--json", "--config", str(config)], env=env)
    assert data.exit_code == 0, data.output
    return text.output, json.loads(data.output)


@pytest.mark.redis
def test_status_after_an_in_process_run_says_no_fleet_is_running_then_running_with_a_beat(
    tmp_path: Path, private_redis: str
) -> None:
    config = write_config(
        tmp_path / "emugen.yaml", f"sqlite:///{tmp_path / 'e.db'}", broker_url=private_redis
    )
    ran = CliRunner().invoke(main, ["pipeline", "run", "--config", str(config)])
    assert ran.exit_code == 0, ran.output

    text, data = _status(config)
    first = text.splitlines()[0]
    assert first.startswith(
        f"fleet: no fleet running (no beat holds the lease on the broker {private_redis}"
    ), first
    assert "`emugen up` starts one" in first and "fleet: running" not in text
    assert data["fleet"]["running"] is False and data["batches"]  # batches, yet no fleet

    lease = BeatLease(fast_client(private_redis, timeout=2), private_redis)
    lease.acquire()  # what a running beat holds, renewed every second
    try:
        text, data = _status(config)
        assert text.startswith(f"fleet: running (beat {lease.token})  skipped ticks")
        assert data["fleet"]["running"] is True
    finally:
        lease.release()
    text, _ = _status(config)
    assert text.startswith("fleet: no fleet running")


def test_status_with_a_broker_that_does_not_answer_says_it_cannot_tell(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "emugen.yaml",
        f"sqlite:///{tmp_path / 'e.db'}",
        broker_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    text, data = _status(config)
    assert text.startswith("fleet: unknown (the broker did not answer"), text
    assert data["fleet"]["running"] is None


def test_a_lease_read_from_no_redis_broker_is_unknown_not_running() -> None:
    running, note = read_lease(None)
    assert running is None and "not Redis" in note


@pytest.mark.parametrize(
    ("running", "paused", "line"),
    [
        (True, False, "fleet: running (beat h pid 1)"),
        (True, True, "fleet: PAUSED (beat h pid 1)"),
        (False, False, "fleet: no fleet running (beat h pid 1; `emugen up` starts one)"),
        (False, True, "fleet: no fleet running (beat h pid 1, paused; `emugen up` starts one)"),
        (None, False, "fleet: unknown (beat h pid 1)"),
    ],
)
def test_the_fleet_line_reads_the_lease_and_the_pause(
    running: bool | None, paused: bool, line: str
) -> None:
    report = {
        "fleet": {
            "paused": paused,
            "skipped_ticks": {},
            "last_reload": None,
            "running": running,
            "beat": "beat h pid 1",
        },
        "store": None,
        "due": None,
        "batches": {},
        "layers": {},
        "latest": [],
        "quarantine_by_reason": {},
        "landing": {"files": 0, "last_error": None},
        "reconciliation": {
            "ok": True,
            "injected": 0,
            "caught": 0,
            "caught_pct": 100.0,
            "missed": 0,
            "false_alarms": {},
        },
    }
    assert format_status(report).splitlines()[0] == f"{line}  skipped ticks: none"
