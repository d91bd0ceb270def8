"""A private fleet for benchmarks, soak and chaos runs: redis-server, workers, beat, dashboard.

Every process is started, awaited and stopped by emugen.fleet.supervisor, logging to a file in the
run's folder. Resident memory and process states come from /proc (procfs.py; no psutil needed).
"""

from __future__ import annotations

import copy
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emugen.errors import FleetStartError
from emugen.fleet.broker import free_port, redis_binary
from emugen.fleet.names import QUEUES
from emugen.fleet.reload import write_yaml_atomically
from emugen.fleet.supervisor import kill_group, spawn, stop, wait_for
from emugen.lab.procfs import child_pids, proc_state

READY_TIMEOUT_S = 60


# -- configuration -------------------------------------------------------------------------


def fleet_config(
    database_url: str,
    broker_url: str,
    interval: float,
    size: tuple[int, int] | None = None,
    fleet: dict[str, Any] | None = None,
    seed: int = 42,
) -> dict[str, Any]:
    """An emulated config at `interval` for both streams; `size` None keeps the default sizes."""

    def cadence(low: int, high: int) -> dict[str, Any]:
        lo, hi = size if size is not None else (low, high)
        return {"interval": interval, "min_batch_size": lo, "max_batch_size": hi}

    return {
        "mode": "emulated",
        "seed": seed,
        "database_url": database_url,
        "broker_url": broker_url,
        "companies": {"emulated": cadence(10, 10)},
        "events": {"emulated": cadence(5, 20)},
        "fleet": dict(fleet or {}),
    }


# -- the fleet -----------------------------------------------------------------------------


@dataclass
class Child:
    role: str
    args: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


class PrivateFleet:
    """redis-server, N workers (`-c 1` each), beat and optionally `emugen web`, on one config.

    Workers are separate processes (worker1, worker2, ...) so one can be killed on its own.
    """

    def __init__(
        self,
        folder: Path,
        database_url: str,
        interval: float,
        *,
        workers: int = 1,
        size: tuple[int, int] | None = None,
        fleet: dict[str, Any] | None = None,
        web: bool = False,
    ) -> None:
        # children run inside the folder, so a relative --out must not be resolved again from there
        self.folder = folder.resolve()
        self.port = free_port()
        self.broker_url = f"redis://127.0.0.1:{self.port}/0"
        self.database_url = database_url
        self.config_path = self.folder / "emugen.yaml"
        self.data = fleet_config(database_url, self.broker_url, interval, size, fleet)
        write_yaml_atomically(self.config_path, self.data)
        self.redis: subprocess.Popen[bytes] | None = None
        self.children: dict[str, Child] = {}
        self._old_sigterm: Any = None  # the SIGTERM handler to restore at close()
        celery = [sys.executable, "-m", "celery", "-A", "emugen"]
        for i in range(1, workers + 1):
            name = f"worker{i}"
            # mingle and gossip only talk to other workers; skipping them saves ~1 s per start
            self.children[name] = Child(
                name,
                [
                    *celery,
                    "worker",
                    "-Q",
                    ",".join(QUEUES),
                    "-c",
                    "1",
                    "-n",
                    f"{name}@%h",
                    "--loglevel",
                    "INFO",
                    "--without-mingle",
                    "--without-gossip",
                ],
                folder / f"{name}.log",
            )
        self.web_port = free_port() if web and web_available() else None
        if self.web_port is not None:
            self.children["web"] = Child(
                "web",
                [
                    sys.executable,
                    "-m",
                    "emugen",
                    "web",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.web_port),
                ],
                folder / "web.log",
            )
        self.children["beat"] = Child(
            "beat", [*celery, "beat", "--loglevel", "INFO"], folder / "beat.log"
        )
        for log in [folder / "redis.log", *(c.log for c in self.children.values())]:
            log.unlink(missing_ok=True)  # a rerun into the same folder starts fresh logs

    # -- configuration (beat re-reads the file within a second; workers on their next task)
    def set_interval(self, interval: float) -> None:
        data = copy.deepcopy(self.data)
        for stream in ("companies", "events"):
            data[stream]["emulated"]["interval"] = interval
        self.data = data
        write_yaml_atomically(self.config_path, data)

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("EMUGEN_DATABASE_URL", "EMUGEN_BROKER_URL")
        }
        env.update(EMUGEN_CONFIG=str(self.config_path), PYTHONUNBUFFERED="1")
        return env

    @property
    def workers(self) -> list[str]:
        return [name for name in self.children if name.startswith("worker")]

    # -- processes
    def start(self) -> None:
        """Redis, the schema, workers (ready to consume), the dashboard, then beat."""
        from emugen.db.session import engine_for, init_db

        self._terminate_as_interrupt()
        self.start_redis()
        init_db(engine_for(self.database_url))
        for name in self.workers:
            self.start_child(name, wait=False)
        for name in self.workers:
            self.wait_ready(name)
        if "web" in self.children:
            self.start_child("web")
        self.start_child("beat")

    def start_redis(self) -> None:
        # no RDB, no AOF: a restart starts empty, as after a crash of the broker
        self.redis = spawn(
            [
                str(redis_binary()),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            self.folder / "redis.log",
        )
        wait_for(self._redis_answers, 20, f"redis-server on port {self.port}", every=0.05)

    def _redis_answers(self) -> bool:
        try:
            return bool(self.redis_client().ping())
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def redis_client(self) -> Any:
        import redis

        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2
        )

    def restart_redis(self, down_s: float = 1.0) -> None:
        """Stop the server (no RDB, no AOF: every queued message is lost), wait, start anew."""
        assert self.redis is not None
        stop(self.redis, timeout=10)
        time.sleep(down_s)
        self.start_redis()

    def start_child(self, role: str, wait: bool = True) -> Child:
        child = self.children[role]
        child.process = spawn(child.args, child.log, env=self.env(), cwd=self.folder)
        if wait:
            self.wait_ready(role)
        return child

    def wait_ready(self, role: str) -> None:
        child = self.children[role]
        offset = len(child.text())
        marker = "beat: Starting" if role == "beat" else "ready."

        def ready() -> bool:
            if not child.alive():
                tail = child.text()[-2000:]
                raise FleetStartError(f"{role} exited while starting; its log ends:\n{tail}")
            if role == "web":
                return self._web_answers()
            return marker in child.text()[max(0, offset - 5000) :]

        wait_for(ready, READY_TIMEOUT_S, f"{role} to be ready ({child.log})")

    def _web_answers(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.web_url}/api/health", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    @property
    def web_url(self) -> str | None:
        return None if self.web_port is None else f"http://127.0.0.1:{self.web_port}"

    def busy(self, role: str) -> bool:
        """Whether a pool process of the worker is on a CPU or in disk wait (mid-task)."""
        child = self.children[role]
        if not child.alive() or child.pid is None:
            return False
        return any(proc_state(p) in ("R", "D") for p in child_pids(child.pid))

    def kill(self, role: str, group: bool = False) -> int:
        """kill -9 the main process (its pool children are orphaned and finish their task),
        or with `group` the main process and its pool at once, as a machine crash would."""
        child = self.children[role]
        assert child.process is not None
        pid = child.process.pid
        if group:
            kill_group(pid)
        else:
            os.kill(pid, signal.SIGKILL)
        child.process.wait(10)
        return pid

    def reap_orphans(self, role: str) -> None:
        """Kill what is left of a killed process's group (pool children mid-task)."""
        child = self.children[role]
        if child.process is not None and child.process.poll() is not None:
            kill_group(child.process.pid)

    def stop_child(self, role: str, timeout: float = 30) -> None:
        child = self.children[role]
        if child.process is not None:
            stop(child.process, timeout=timeout)

    def pids(self) -> dict[str, list[int]]:
        """Live pids per role; a worker's pool processes are `workerN-pool`."""
        found: dict[str, list[int]] = {}
        if self.redis is not None and self.redis.poll() is None:
            found["redis"] = [self.redis.pid]
        for role, child in self.children.items():
            if child.alive() and child.pid is not None:
                found[role] = [child.pid]
                if role.startswith("worker"):
                    found[f"{role}-pool"] = child_pids(child.pid)
        return found

    def roles(self) -> list[str]:
        names = ["redis"]
        for role in self.children:
            names.append(role)
            if role.startswith("worker"):
                names.append(f"{role}-pool")
        return names

    def _terminate_as_interrupt(self) -> None:
        """SIGTERM (`kill`, a CI timeout) unwinds like Ctrl-C, through close(): by default it
        ends this process at once and leaves the fleet's processes running, orphaned."""
        if threading.current_thread() is not threading.main_thread():
            return

        def interrupt(_signum: int, _frame: object) -> None:
            raise KeyboardInterrupt

        self._old_sigterm = signal.signal(signal.SIGTERM, interrupt)

    def close(self) -> None:
        try:
            for role in ("beat", *self.workers, "web"):
                if role in self.children:
                    self.stop_child(role)
            if self.redis is not None:
                stop(self.redis, timeout=10)
        finally:
            if self._old_sigterm is not None:
                signal.signal(signal.SIGTERM, self._old_sigterm)
                self._old_sigterm = None
        from emugen.db.session import dispose_engines

        dispose_engines(self.database_url)

    def __enter__(self) -> PrivateFleet:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def web_available() -> bool:
    """Whether `emugen web` can run here: the dashboard needs FastAPI and uvicorn.

    Asked of the installed packages, not of the CLI: the lab never imports the CLI."""
    return all(importlib.util.find_spec(name) is not None for name in ("fastapi", "uvicorn"))
