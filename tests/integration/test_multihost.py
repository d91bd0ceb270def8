"""A fleet spread over three hosts (network namespaces): one slow link, one cut for 10 s.

services host: redis-server (password), a private PostgreSQL (scram password), moto's S3 server
(the stand-in for the landing zone's bucket) and beat. worker1 reaches the broker and the
database only through a proxy adding 50 ms each way (the kernel has no netem); worker2's link
goes down for 10 s mid-run. Each worker host has its own folder and config file and shares no
file with the others. Afterwards: every seq once and in gold, gold equal to a recomputation from
silver, 100 % reconciliation, and every batch's file on S3 with its sha256 (`emugen land
verify`).
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
from emugen.db.session import dispose_engines, engine_for, init_db, read_session
from emugen.lab import verdict
from emugen.supervisor import wait_for
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

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.postgres,
              pytest.mark.slow]

DELAY_S = 0.05
CUT_S = 10
DONE = "succeeded in"  # a celery worker's log line for each task it finished


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
def cluster(request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
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
        failed = any(getattr(getattr(request.node, f"report_{when}", None), "failed", False)
                     for when in ("setup", "call"))
        if failed:
            print(crew.logs())
        crew.close()


def finished(host: Host) -> int:
    return sum(proc.text().count(DONE) for proc in host.procs if proc.name.endswith("worker"))


def timed_ping(host: Host, address: str, secret: str) -> float:
    """Seconds for redis-cli on `host` to authenticate and PING (two round trips)."""
    began = time.monotonic()
    subprocess.run(["ip", "netns", "exec", host.netns, "redis-cli", "-h", address, "-p",
                    str(REDIS_PORT), "-a", secret, "--no-auth-warning", "PING"],
                   check=True, capture_output=True, timeout=20)
    return time.monotonic() - began


def statuses(engine) -> dict[str, int]:  # noqa: ANN001
    with read_session(engine) as session:
        return dict(session.execute(select(BatchRow.status, func.count())
                                    .group_by(BatchRow.status)).all())


def land_verify(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emugen", "land", "verify", "--config",
                           str(config)], capture_output=True, text=True, timeout=60,
                          env=worker_env(config.parent, config))


def test_a_fleet_on_two_hosts_loses_and_duplicates_nothing_through_a_slow_link_and_a_cut(
        cluster: Cluster, tmp_path: Path) -> None:
    net, phases = cluster.network, cluster.phases
    with timed("network and services", phases):
        services_host = net.services_host()
        slow, cut = net.worker_host("worker1", 11), net.worker_host("worker2", 12)
        services = cluster.services = Services(services_host, secrets.token_hex(12))
        services.start()
        proxy = slow.start("proxy", [
            sys.executable, "-m", "emugen.lab.proxy", "--delay", str(DELAY_S),
            *(f"127.0.0.1:{port}={services_host.address}:{port}"
              for port in (REDIS_PORT, PG_PORT))], env=worker_env(slow.folder))
        wait_logged(proxy, "listening", 20, count=2)

    knobs = {"interval": 1, "size": (20, 60), "fleet": {"stuck_after": 3, "reaper_interval": 1}}
    here = services_host.address
    # worker1 knows the services only as its own loopback: the proxy's end
    configs = {
        name: host_config(folder, services, broker_url=services.broker_url.replace(here, at),
                          database_url=services.database_url.replace(here, at), **knobs)
        for name, folder, at in (("services", services_host.folder, here),
                                 ("worker1", slow.folder, "127.0.0.1"),
                                 ("worker2", cut.folder, here),
                                 ("harness", tmp_path, here))}
    engine = engine_for(services.database_url)
    init_db(engine)
    assert timed_ping(slow, "127.0.0.1", services.secret) >= 2 * 2 * DELAY_S

    with timed("workers and beat start", phases):
        workers = [start_worker(slow, configs["worker1"]), start_worker(cut, configs["worker2"])]
        for worker in workers:
            wait_logged(worker, "ready.", 60)
        beat = services_host.start("beat", [
            sys.executable, "-m", "celery", "-A", "emugen", "beat", "--loglevel", "INFO",
            "-s", str(services_host.folder / "celerybeat-schedule")],
            env=worker_env(services_host.folder, configs["services"]))
        wait_logged(beat, "beat: Starting", 30)

    with timed("run, cut and recovery", phases):
        wait_for(lambda: finished(slow) >= 4 and finished(cut) >= 4, 60,
                 "both worker hosts to finish tasks")
        cut.link(up=False)
        time.sleep(1)  # a task already past its last network call may still finish
        cut_off = finished(cut)
        time.sleep(CUT_S - 1)
        assert finished(cut) == cut_off, "worker2 finished a task with its link down"
        cut.link(up=True)
        after_cut = finished(cut)
        wait_for(lambda: finished(cut) >= after_cut + 4, 60,
                 "worker2 to finish tasks again after its link came back")

    with timed("drain", phases):
        subprocess.run([sys.executable, "-m", "emugen", "pause", "--config",
                        str(configs["harness"])], check=True, capture_output=True, timeout=60,
                       env=worker_env(tmp_path, configs["harness"]))
        wait_for(lambda: set(statuses(engine)) == {"gold"}, 60, "every batch in gold")
        wait_for(lambda: land_verify(configs["harness"]).returncode == 0, 60,
                 "every batch's file on S3 (the reaper relands what a cut interrupted)")

    checks = [*verdict.batch_checks(engine), verdict.gold_check(engine),
              verdict.reconciliation_check(engine)]
    report = "\n".join(c.line() for c in checks)
    print(report, "\nphases (s):", phases)
    assert verdict.verdict(checks), report
    assert statuses(engine)["gold"] >= 20
    landed = land_verify(configs["harness"])
    assert landed.returncode == 0 and "OK" in landed.stdout, landed.stdout + landed.stderr
