"""The fleet `emugen up` runs: the Procfile's processes, their logs, their deaths, their stop."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from emugen.errors import FlowerAuthError, PortTaken
from emugen.fleet.names import QUEUES
from emugen.fleet.supervisor import ended, kill_group, spawn, terminate_together

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ProcessDef:
    name: str
    command: str
    essential: bool  # without worker or beat nothing is generated: their death stops the fleet
    port: int | None = None  # where it serves (its `--port` in `command`)
    title: str | None = None  # how the URL is announced
    option: str | None = None  # the `emugen up` option that chooses the port ...
    env: str | None = None  # ... and its environment variable

    @property
    def url(self) -> str | None:
        return None if self.port is None else f"http://{HOST}:{self.port}"

    def on_port(self, port: int) -> ProcessDef:
        """The same process serving on `port` (its command's `--port` rewritten)."""
        assert self.port is not None, f"{self.name} serves no port"
        command = re.sub(rf"(--port[= ]){self.port}\b", rf"\g<1>{port}", self.command)
        return replace(self, command=command, port=port)


# The fleet, in start order. The repo-root Procfile lists the same commands (a test checks),
# so `honcho start` / `foreman start` and `emugen up` run the same thing.
PROCESSES: tuple[ProcessDef, ...] = (
    ProcessDef(
        "worker",
        f"celery -A emugen worker -Q {','.join(QUEUES)} --concurrency 2 --loglevel INFO",
        essential=True,
    ),
    ProcessDef("beat", "celery -A emugen beat --loglevel INFO", essential=True),
    # Basic auth comes from FLOWER_BASIC_AUTH; Flower keeps every task in memory: bound it.
    ProcessDef(
        "flower",
        "celery -A emugen flower --address=127.0.0.1 --port=5555 --max_tasks=10000",
        essential=False,
        port=5555,
        title="Flower",
        option="--flower-port",
        env="EMUGEN_FLOWER_PORT",
    ),
    ProcessDef(
        "web",
        "emugen web --host 127.0.0.1 --port 8000",
        essential=False,
        port=8000,
        title="dashboard",
        option="--web-port",
        env="EMUGEN_WEB_PORT",
    ),
)


def on_ports(
    processes: Sequence[ProcessDef], ports: Mapping[str, int | None]
) -> tuple[ProcessDef, ...]:
    """`processes` with the ports asked for by name (None keeps a process's own)."""
    chosen = {name: port for name, port in ports.items() if port is not None}
    return tuple(
        spec.on_port(chosen[spec.name]) if spec.name in chosen else spec for spec in processes
    )


def port_refusal(port: int, host: str = HOST) -> str | None:
    """Why nothing of ours could listen on `port` now (None when it is free).

    Bound as uvicorn and Tornado bind (SO_REUSEADDR), so a port left in TIME_WAIT by an
    earlier run counts as free, and one that anybody listens on does not.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def check_ports(processes: Sequence[ProcessDef]) -> None:
    """PortTaken for the first port that is taken (or asked for twice), before anything starts."""
    seen: dict[int, ProcessDef] = {}
    for spec in processes:
        if spec.port is None:
            continue
        other = seen.get(spec.port)
        if other is not None:
            raise PortTaken(
                f"{other.option} and {spec.option} both ask for port {spec.port}; "
                f"give the {spec.title} another one ({spec.option} PORT)"
            )
        seen[spec.port] = spec
        problem = port_refusal(spec.port)
        if problem is not None:
            raise PortTaken(
                f"port {spec.port} on {HOST}, where the {spec.title} would listen, is taken "
                f"({problem}): another program (perhaps another emugen fleet) serves there; "
                f"choose a free one with {spec.option} PORT (or ${spec.env}), or stop that program"
            )


STOP_FIRST = ("beat",)  # no new ticks while the workers drain
LOG_DIR = Path("var/log")
SUMMARY_EVERY_S = 2.0
STOP_TIMEOUT_S = 20.0
FLOWER_USER = "emugen"
_PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+?)\s*$")


def read_procfile(path: str | os.PathLike[str]) -> dict[str, str]:
    """`name: command` lines of a Procfile (comments and blank lines skipped)."""
    procs: dict[str, str] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        match = _PROCFILE_LINE.match(line)
        if match and not line.lstrip().startswith("#"):
            procs[match[1]] = match[2]
    return procs


@dataclass(frozen=True)
class FlowerAuth:
    value: str  # what FLOWER_BASIC_AUTH holds for Flower
    user: str
    password: str | None  # shown only when generated: the user already knows their own
    generated: bool


def flower_auth(environ: Mapping[str, str]) -> FlowerAuth:
    """Flower's login from FLOWER_BASIC_AUTH (`user:pass[,user2:pass2]`), else a fresh one."""
    value = environ.get("FLOWER_BASIC_AUTH", "").strip()
    if not value:
        # token_urlsafe never yields ':' or ',', which Flower uses as separators
        password = secrets.token_urlsafe(12)
        return FlowerAuth(f"{FLOWER_USER}:{password}", FLOWER_USER, password, generated=True)
    pairs = [pair.partition(":") for pair in value.split(",")]
    for n, (user, sep, password) in enumerate(pairs, 1):
        if not (user and sep and password):
            raise FlowerAuthError(
                f"FLOWER_BASIC_AUTH entry {n} of {len(pairs)} is not user:password (it needs a "
                "non-empty user, a colon and a non-empty password); e.g. "
                "FLOWER_BASIC_AUTH=admin:s3cret, or unset it to get a generated password"
            )
    return FlowerAuth(value, pairs[0][0], None, generated=False)


def resolve(command: str) -> list[str]:
    """argv for a Procfile command; its program from this Python's environment when there.

    So `.venv/bin/emugen up` runs `.venv/bin/celery` even when the venv is not activated.
    """
    argv = shlex.split(command)
    beside = Path(sys.executable).parent / argv[0]
    if beside.is_file() and os.access(beside, os.X_OK):
        argv[0] = str(beside)
    else:
        argv[0] = shutil.which(argv[0]) or argv[0]
    return argv


@dataclass
class Child:
    spec: ProcessDef
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    started: float = field(default_factory=time.monotonic)
    error: str | None = None  # why it could not be started
    reported: bool = False

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal_group(self, signum: int) -> None:
        """Signal its process group: the process and any children it left behind."""
        if self.popen is not None:
            kill_group(self.popen.pid, signum)


class Fleet:
    """Starts the processes with their output in log files, watches them, stops them in order."""

    def __init__(
        self,
        processes: Sequence[ProcessDef],
        env: Mapping[str, str],
        log_dir: Path,
        say: Callable[[str], None],
    ) -> None:
        self.processes = processes
        self.env = dict(env)
        self.log_dir = log_dir
        self.say = say
        self.children: list[Child] = []

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for spec in self.processes:
            child = Child(spec, self.log_dir / f"{spec.name}.log")
            self.children.append(child)
            with child.log_path.open("ab") as log:
                stamp = datetime.now(UTC).isoformat(timespec="seconds")
                log.write(f"\n=== emugen up {stamp}: {spec.command}\n".encode())
            try:
                child.popen = spawn(resolve(spec.command), child.log_path, env=self.env)
            except OSError as exc:
                child.error = f"cannot run {spec.command.split()[0]!r}: {exc.strerror}"
                continue
            self.say(f"  {spec.name:7} pid {child.popen.pid:<7} {spec.command}")

    def check(self) -> Child | None:
        """Report each process that stopped (once); return an essential one that did."""
        for child in self.children:
            if child.alive or child.reported:
                continue
            child.reported = True
            # A worker that died leaves its pool children behind in its group: end them now
            # (a group id is not reused while any member lives).
            child.signal_group(signal.SIGKILL)
            self.say(self.describe_death(child))
            if child.spec.essential:
                return child
        return None

    def down(self) -> str:
        """' | down: web' when a process is not running, for the summary line."""
        names = [c.spec.name for c in self.children if not c.alive]
        return f" | down: {', '.join(names)}" if names else ""

    def describe_death(self, child: Child) -> str:
        from emugen.fleet.broker import tail

        name = child.spec.name
        if child.error is not None:
            head = f"{name} could not be started: {child.error}"
        else:
            assert child.popen is not None
            seconds = time.monotonic() - child.started
            head = (
                f"{name} {ended(child.popen.returncode)} after {seconds:.1f} s; "
                f"{child.log_path} ends with:\n{tail(child.log_path)}"
            )
        if child.spec.essential:
            return f"ERROR: {head}\nthe fleet cannot run without {name}: stopping everything"
        return f"WARNING: {head}\nthe rest of the fleet keeps running without {name}"

    def stop(
        self, timeout: float = STOP_TIMEOUT_S, hurry: Callable[[], bool] = lambda: False
    ) -> None:
        """Beat first, then the rest with SIGTERM (workers finish their tasks); kill leftovers."""
        first = [c for c in self.children if c.spec.name in STOP_FIRST]
        rest = [c for c in self.children if c.spec.name not in STOP_FIRST]
        for group in (first, rest):
            self._stop_group(group, timeout, hurry)

    def _stop_group(self, group: list[Child], timeout: float, hurry: Callable[[], bool]) -> None:
        live = [c for c in group if c.alive]
        for child in live:
            assert child.popen is not None
            self.say(f"stopping {child.spec.name} (pid {child.popen.pid}, SIGTERM)")
        began = time.monotonic()
        # how long each one needed, for the user to see
        took = terminate_together([c.popen for c in live if c.popen is not None], timeout, hurry)
        for child in live:
            assert child.popen is not None
            if child.alive:
                self.say(
                    f"{child.spec.name} still running after "
                    f"{time.monotonic() - began:.1f} s: killing it"
                )
                child.signal_group(signal.SIGKILL)
            child.popen.wait()
            child.reported = True
            seconds = took.get(child.popen.pid, time.monotonic() - began)
            child.signal_group(signal.SIGKILL)  # anything it left behind in its group
            # uvicorn re-raises the SIGTERM it shut down cleanly on: a signal here is not a crash
            self.say(
                f"{child.spec.name} stopped ({ended(child.popen.returncode)}, {seconds:.1f} s)"
            )
