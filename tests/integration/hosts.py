"""Hosts for the multi-host test: network namespaces on one bridge, and what runs on them.

The services host's namespace holds a bridge with the services' address; each worker host is a
namespace with one veth port on that bridge (`eth0` inside, so cutting its link is `ip link set
eth0 down` there), and the harness (this process, in the root namespace) gets a port too, so the
test can reach the services as an operator would. Every host has a folder of its own; nothing
but the installed code is shared.

Everything started here runs in a session of its own (supervisor.spawn) and is killed by group
at teardown; deleting the namespaces removes every veth and the bridge with them.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emugen.fleet.supervisor import kill_group, spawn, wait_for
from tests.fleet_helpers import write_config
from tests.integration.conftest import REPO_ROOT, Proc

PREFIX = "emugen-mh"  # every namespace this harness creates: emugen-mh-<pid>-<role>


def _pg_bin() -> Path:
    """The newest Debian PostgreSQL server binaries (initdb, postgres)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
REDIS_PORT, PG_PORT, S3_PORT = 6379, 5432, 5000
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# moto answers a refused or cut connection slowly under botocore's default retries (~9 s)
FAIL_FAST = {"retries": {"max_attempts": 2}, "connect_timeout": 2, "read_timeout": 10}


def run(*args: str, timeout: float = 30) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def missing_tools() -> list[str]:
    """What this machine lacks for the test (root, iproute2, the servers)."""
    lacks = [] if os.geteuid() == 0 else ["root (ip netns needs it)"]
    for tool in ("ip", "setpriv", "redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            lacks.append(tool)
    lacks += [
        str(p) for p in (PG_BIN / "initdb", PG_BIN / "postgres", moto_server()) if not p.exists()
    ]
    return lacks


def moto_server() -> Path:
    return Path(sys.executable).parent / "moto_server"


def remove_stale_namespaces() -> None:
    """Namespaces left by a run of this harness that was killed (its pid is gone)."""
    for line in run("ip", "netns", "list").splitlines():
        found = re.match(rf"({PREFIX}-(\d+)-\w+)", line)
        if found and not Path(f"/proc/{found[2]}").exists():
            subprocess.run(["ip", "netns", "del", found[1]], capture_output=True)


def free_subnet() -> str:
    """A 10.x.y.0/24 prefix no interface on this machine uses ("10.x.y")."""
    used = run("ip", "-4", "-o", "addr")
    for _ in range(100):
        prefix = f"10.{random.randint(100, 250)}.{random.randint(0, 255)}"
        if f" {prefix}." not in used:
            return prefix
    raise AssertionError("no free 10.x.y.0/24 for the test network")


@dataclass
class Host:
    """One namespace: its role, address and a folder of its own."""

    role: str
    netns: str
    address: str
    folder: Path
    procs: list[Proc] = field(default_factory=list)

    def start(
        self,
        name: str,
        args: Sequence[str],
        env: dict[str, str] | None = None,
        user: str | None = None,
    ) -> Proc:
        """`args` inside this host's namespace (as `user`), in its own session."""
        drop = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"] if user else []
        log = self.folder / f"{name}.log"
        process = spawn(
            ["ip", "netns", "exec", self.netns, *drop, *args], log, env=env, cwd=self.folder
        )
        proc = Proc(f"{self.role}/{name}", process, log)
        self.procs.append(proc)
        return proc

    def link(self, up: bool) -> None:
        """Bring this host's only link down (cut off from every other host) or back up."""
        run("ip", "-n", self.netns, "link", "set", "eth0", "up" if up else "down")

    def kill_all(self) -> None:
        # PostgreSQL first, with a fast shutdown (SIGINT): a killed postmaster leaves its
        # SysV shared-memory segment behind on the machine
        for proc in self.procs:
            if proc.name.endswith("/postgres") and proc.alive():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.process.send_signal(signal.SIGINT)
                    proc.process.wait(15)
        for proc in self.procs:
            kill_group(proc.pid)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.process.wait(10)


class Network:
    """A bridge in the services host; worker hosts and the harness plugged into it."""

    def __init__(self, root: Path) -> None:
        remove_stale_namespaces()
        self.tag = f"{PREFIX}-{os.getpid()}"
        self.subnet = free_subnet()
        self.root = root
        self.hosts: dict[str, Host] = {}
        self.harness_address = f"{self.subnet}.2"
        self.harness_link = f"mh{os.getpid() % 100000}h"
        self._ports = 0

    def _host(self, role: str, number: int) -> Host:
        netns = f"{self.tag}-{role}"
        run("ip", "netns", "add", netns)
        run("ip", "-n", netns, "link", "set", "lo", "up")
        folder = self.root / role
        folder.mkdir()
        host = Host(role, netns, f"{self.subnet}.{number}", folder)
        self.hosts[role] = host
        return host

    def services_host(self) -> Host:
        host = self._host("services", 1)
        run("ip", "-n", host.netns, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "br0")
        run("ip", "-n", host.netns, "link", "set", "br0", "up")
        # the harness's port: its end stays in the root namespace
        self._port(None, self.harness_address)
        return host

    def worker_host(self, role: str, number: int) -> Host:
        host = self._host(role, number)
        self._port(host, host.address)
        return host

    def _port(self, host: Host | None, address: str) -> None:
        """A veth pair: one end on the bridge, the other `eth0` in `host` (or in the root
        namespace under a unique name, for the harness)."""
        services = self.hosts["services"].netns
        self._ports += 1
        bridge_end = f"mh{os.getpid() % 100000}p{self._ports}"
        inside = ["eth0", "netns", host.netns] if host else [self.harness_link]
        run(
            "ip",
            "link",
            "add",
            inside[0],
            *inside[1:],
            "type",
            "veth",
            "peer",
            "name",
            bridge_end,
            "netns",
            services,
        )
        run("ip", "-n", services, "link", "set", bridge_end, "master", "br0", "up")
        ns = ["-n", host.netns] if host else []
        run("ip", *ns, "addr", "add", f"{address}/24", "dev", inside[0])
        run("ip", *ns, "link", "set", inside[0], "up")

    def teardown(self) -> None:
        for host in self.hosts.values():
            host.kill_all()
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True)
        # the harness's veth goes with its peer, but the kernel does it later
        subprocess.run(["ip", "link", "del", self.harness_link], capture_output=True)


# -- services ---------------------------------------------------------------------------------


@dataclass
class Services:
    """Redis (password), PostgreSQL (scram password) and moto's S3 server on one host."""

    host: Host
    secret: str
    bucket: str = "landing"
    pg_folder: Path | None = None
    _moto: Proc | None = None

    @property
    def broker_url(self) -> str:
        return f"redis://:{self.secret}@{self.host.address}:{REDIS_PORT}/0"

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres:{self.secret}@{self.host.address}:{PG_PORT}/emugen"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.host.address}:{S3_PORT}"

    def start(self) -> None:
        """Start all three; return once Redis and PostgreSQL answer (see `wait_s3`)."""
        address = self.host.address
        # moto and Redis start while initdb runs; moto's imports take a few seconds
        self._moto = self.host.start(
            "moto",
            [str(moto_server()), "-H", address, "-p", str(S3_PORT)],
            env=worker_env(self.host.folder),
        )
        redis = self.host.start(
            "redis",
            [
                "redis-server",
                "--bind",
                address,
                "--port",
                str(REDIS_PORT),
                "--requirepass",
                self.secret,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.host.folder),
            ],
        )
        postgres = self._start_postgres()
        wait_for(
            lambda: _alive(redis) and _redis_pings(address, self.secret),
            20,
            "redis-server on the services host",
        )
        wait_for(
            lambda: _alive(postgres) and self._postgres_answers(),
            30,
            "PostgreSQL on the services host",
        )

    def wait_s3(self) -> None:
        """Wait for moto's S3 server and create the landing bucket."""
        moto = self._moto
        assert moto is not None, "start() first"
        wait_for(lambda: _alive(moto) and self._s3_answers(), 40, "moto's S3 server")

    def _start_postgres(self) -> Proc:
        # postgres refuses to run as root and needs a folder of its own: not under the
        # pytest tmp_path, which only root may enter
        self.pg_folder = Path(tempfile.mkdtemp(prefix="emugen-mh-pg-"))
        data, secret_file = self.pg_folder / "data", self.pg_folder / "pw"
        secret_file.write_text(self.secret)
        shutil.chown(self.pg_folder, "postgres", "postgres")
        shutil.chown(secret_file, "postgres", "postgres")
        run(
            "setpriv",
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--no-sync",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={secret_file}",
            timeout=60,
        )
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.host.address.rsplit('.', 1)[0]}.0/24 scram-sha-256\n")
        # durability off: a throwaway cluster, and the machine is shared
        return self.host.start(
            "postgres",
            [
                str(PG_BIN / "postgres"),
                "-D",
                str(data),
                "-c",
                f"listen_addresses={self.host.address}",
                "-c",
                f"port={PG_PORT}",
                "-c",
                f"unix_socket_directories={self.pg_folder}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            user="postgres",
        )

    def _postgres_answers(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(
                self.database_url.replace("/emugen", "/postgres"),
                connect_timeout=2,
                autocommit=True,
            ) as conn:
                if not conn.execute(
                    "select 1 from pg_database where datname = 'emugen'"
                ).fetchone():
                    conn.execute("create database emugen")
            return True
        except psycopg.OperationalError:
            return False

    def _s3_answers(self) -> bool:
        from emugen.sinks import filesystem

        try:
            zone = filesystem.open_zone(f"s3://{self.bucket}", {"endpoint_url": self.s3_endpoint})
            if not zone.fs.exists(self.bucket):
                zone.fs.mkdir(self.bucket)
            return True
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def teardown(self) -> None:
        if self.pg_folder is not None:
            shutil.rmtree(self.pg_folder, ignore_errors=True)


def _alive(proc: Proc) -> bool:
    if not proc.alive():
        raise AssertionError(f"{proc.name} {proc.process.returncode}:\n{proc.text()[-3000:]}")
    return True


def _redis_pings(address: str, secret: str) -> bool:
    import redis

    try:
        return bool(
            redis.Redis(host=address, port=REDIS_PORT, password=secret, socket_timeout=2).ping()
        )
    except redis.RedisError:
        return False


# -- the emugen processes -----------------------------------------------------------------------


def worker_env(folder: Path, config: Path | None = None) -> dict[str, str]:
    """A host's environment: its own home, temp and config; S3 credentials; no inherited
    emugen URL overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMUGEN_", "AWS_"))}
    env.update(
        AWS,
        HOME=str(folder),
        TMPDIR=str(folder),
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    )
    if config is not None:
        env["EMUGEN_CONFIG"] = str(config)
    return env


def host_config(
    folder: Path, services: Services, *, broker_url: str, database_url: str, **knobs: Any
) -> Path:
    """`folder`/emugen.yaml: the fleet test config, with the landing zone on the S3 server."""
    path = write_config(folder / "emugen.yaml", database_url, broker_url=broker_url, **knobs)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    # production cadence at a tenth of its volume: the backfill's workload
    data["companies"]["production"].update(min_batch_size=20, max_batch_size=20)
    data["events"]["production"]["events_per_driver"] = 0.02
    # resend or re-land what is not done after 5 s: quick recovery, few needless resends
    data["fleet"] = {"stuck_after": 5, "reaper_interval": 1}
    data["landing"] = {
        "root": f"s3://{services.bucket}/zone",
        "format": "jsonl",
        "storage_options": {"endpoint_url": services.s3_endpoint, "config_kwargs": FAIL_FAST},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def start_worker(host: Host, config: Path) -> Proc:
    # one pool process per host: two hosts on a 2-core machine shared with other tests
    return host.start(
        "worker",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "emugen",
            "worker",
            "-Q",
            "generate,pipeline",
            "-c",
            "1",
            "-n",
            f"{host.role}@%h",
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
        ],
        env=worker_env(host.folder, config),
    )


def wait_logged(proc: Proc, marker: str, timeout: float, count: int = 1) -> None:
    def seen() -> bool:
        _alive(proc)
        return proc.text().count(marker) >= count

    wait_for(seen, timeout, f"{proc.name} to log {marker!r} {count}x")


@contextlib.contextmanager
def timed(label: str, into: dict[str, float]) -> Iterator[None]:
    began = time.monotonic()
    yield
    into[label] = round(time.monotonic() - began, 1)
