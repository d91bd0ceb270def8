"""`emugen backfill` on a fleet spread over three hosts (network namespaces): one slow link,
one cut for 10 s.

services host: redis-server (password), a private PostgreSQL (scram password), moto's S3 server
(the stand-in for the landing zone's bucket), beat (paused: it sends only the reaper) and the
backfill command. worker1 reaches the broker and the database only through a proxy adding 50 ms
each way (the kernel has no netem); worker2's link goes down for 10 s mid-backfill. Each host
has its own folder and config file and shares no file with the others. Afterwards: the
backfill exited 0, every seq once and in gold, gold equal to a recomputation from silver, 100 %
reconciliation, and every batch's file on S3 with its sha256 (`emugen land verify`).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from emugen.db.models import BatchRow
from emugen.db.session import dispose_engines, engine_for, init_db, read_session, write_session
from emugen.fleet.control import set_paused
from emugen.fleet.supervisor import wait_for
from emugen.lab import verdict
from emugen.settings import load_settings
from emugen.sinks.audit import verify
from emugen.vocabulary import Mode
from tests.integration.hosts import (
    AWS,
    PG_PORT,
    REDIS_PORT,
    Host,
    Network,
    Services,
    host_config,
    missing_tools,
    start_worker,
    timed,
    wait_logged,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

DELAY_S = 0.05
CUT_S = 10
# 12 simulated hours of production: a companies batch an hour, an events batch every 15 min
FROM, TO = "2026-01-01T00:00:00Z", "2026-01-01T12:00:00Z"
EXPECTED_TICKS = {"companies": 12, "events": 48}


class Cluster:
    """The three hosts and their services, torn down whatever happens."""

    def __init__(self, root: Path) -> None:
        self.network = Network(root)
        self.services: Services | None = None
        self.phases: dict[str, float] = {}

    def logs(self) -> str:
        parts = []
        for host in self.network.hosts.values():
            for proc in host.procs:
                parts.append(f"===== {proc.name} (last 4000 chars) =====\n{proc.text()[-4000:]}")
        return "\n".join(parts)

    def close(self) -> None:
        self.network.teardown()
        if self.services is not None:
            dispose_engines(self.services.database_url)
            self.services.teardown()


@pytest.fixture
def cluster(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cluster]:
    lacks = missing_tools()
    if lacks:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but this machine lacks {', '.join(lacks)}")
        pytest.skip(f"needs {', '.join(lacks)}; CI runs this")
    for key, value in AWS.items():
        monkeypatch.setenv(key, value)
    crew = Cluster(tmp_path)
    try:
        yield crew
    finally:
        failed = any(
            getattr(getattr(request.node, f"report_{when}", None), "failed", False)
            for when in ("setup", "call")
        )
        if failed:
            print(crew.logs())
        crew.close()


def finished(host: Host) -> int:
    """Backfill ticks the host's worker has finished (its log's `succeeded` lines)."""
    return sum(
        line.startswith("Task emugen.backfill_tick[") and " succeeded in " in line
        for proc in host.procs
        if proc.name.endswith("worker")
        for line in (raw.partition("] ")[2] for raw in proc.text().splitlines())
    )


def timed_ping(host: Host, address: str, secret: str) -> float:
    """Seconds for redis-cli on `host` to authenticate and PING (two round trips)."""
    began = time.monotonic()
    subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            host.netns,
            "redis-cli",
            "-h",
            address,
            "-p",
            str(REDIS_PORT),
            "-a",
            secret,
            "--no-auth-warning",
            "PING",
        ],
        check=True,
        capture_output=True,
        timeout=20,
    )
    return time.monotonic() - began


def emugen(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator on the harness runs it, against `config`."""
    return subprocess.run(
        [sys.executable, "-m", "emugen", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=worker_env(config.parent, config),
    )


def land_verify(config: Path) -> subprocess.CompletedProcess[str]:
    return emugen(config, "land", "verify")


def test_a_backfill_over_two_hosts_loses_and_duplicates_nothing_through_a_slow_link_and_a_cut(
    cluster: Cluster, tmp_path: Path
) -> None:
    net, phases = cluster.network, cluster.phases
    with timed("network, services, workers and beat", phases):
        services_host = net.services_host()
        slow, cut = net.worker_host("worker1", 11), net.worker_host("worker2", 12)
        services = cluster.services = Services(services_host, secrets.token_hex(12))
        services.start()
        proxy = slow.start(
            "proxy",
            [
                sys.executable,
                "-m",
                "emugen.lab.proxy",
                "--delay",
                str(DELAY_S),
                *(
                    f"127.0.0.1:{port}={services_host.address}:{port}"
                    for port in (REDIS_PORT, PG_PORT)
                ),
            ],
            env=worker_env(slow.folder),
        )
        here = services_host.address
        # worker1 knows the services only as its own loopback: the proxy's end
        configs = {
            name: host_config(
                folder,
                services,
                broker_url=services.broker_url.replace(here, at),
                database_url=services.database_url.replace(here, at),
            )
            for name, folder, at in (
                ("services", services_host.folder, here),
                ("worker1", slow.folder, "127.0.0.1"),
                ("worker2", cut.folder, here),
                ("harness", tmp_path, here),
            )
        }
        engine = engine_for(services.database_url)
        init_db(engine)  # once, before any worker could race to create the tables
        # beat makes no live batch while paused, but sends the reaper, which re-lands the
        # files a cut interrupted (as in any deployed fleet)
        with write_session(engine) as session:
            set_paused(session, True)
        wait_logged(proxy, "listening", 20, count=2)
        workers = [start_worker(slow, configs["worker1"]), start_worker(cut, configs["worker2"])]
        beat = services_host.start(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "emugen",
                "beat",
                "--loglevel",
                "INFO",
                "-s",
                str(services_host.folder / "celerybeat-schedule"),
            ],
            env=worker_env(services_host.folder, configs["services"]),
        )
        services.wait_s3()  # while the workers and beat import
        assert timed_ping(slow, "127.0.0.1", services.secret) >= 2 * 2 * DELAY_S
        for proc, marker in (
            (workers[0], "ready."),
            (workers[1], "ready."),
            (beat, "beat: Starting"),
        ):
            wait_logged(proc, marker, 60)

    with timed("backfill with a cut", phases):
        backfill = services_host.start(
            "backfill",
            [
                sys.executable,
                "-m",
                "emugen",
                "backfill",
                "--from",
                FROM,
                "--to",
                TO,
                "--streams",
                "companies,events",
                "--mode",
                "production",
                "--config",
                str(configs["services"]),
            ],
            env=worker_env(services_host.folder, configs["services"]),
        )
        wait_for(lambda: finished(cut) >= 3, 60, "worker2 to finish backfill ticks")
        cut.link(up=False)
        time.sleep(1)  # a task already past its last network call may still finish
        cut_off = finished(cut)
        time.sleep(CUT_S - 1)
        assert finished(cut) == cut_off, "worker2 finished a task with its link down"
        assert backfill.alive(), "the backfill was over before the cut ended: make it longer"
        cut.link(up=True)
        assert backfill.process.wait(90) == 0, backfill.text()[-3000:]
        assert finished(cut) > cut_off, "worker2 never worked again after its link came back"
        assert finished(slow) >= 1, "worker1 finished no tick through its slow link"

    with timed("landing zone", phases):
        landing = load_settings(configs["harness"]).landing
        wait_for(
            lambda: verify(engine, landing).ok,
            30,
            "every batch's file on S3 (the reaper relands what the cut interrupted)",
        )

    checks = [
        *verdict.batch_checks(engine),
        verdict.gold_check(engine, Mode.production),
        verdict.reconciliation_check(engine),
    ]
    report = "\n".join(c.line() for c in checks)
    print(report, "\nphases (s):", phases)
    assert verdict.verdict(checks), report
    with read_session(engine) as session:
        made = dict(
            session.execute(select(BatchRow.stream, func.count()).group_by(BatchRow.stream)).all()
        )
    assert made == EXPECTED_TICKS
    assert "backfill done: " in backfill.text()
    landed = land_verify(configs["harness"])
    assert landed.returncode == 0 and "OK" in landed.stdout, landed.stdout + landed.stderr
