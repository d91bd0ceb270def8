"""`emugen up`: a broker, the database and the Procfile's processes, stopped cleanly on Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from emugen.errors import FleetError, FlowerAuthError

# Heavy modules (redis, SQLAlchemy, the pipeline) are imported inside the command, so that
# `emugen --help` and every other command do not pay for them.


@dataclass(frozen=True)
class ProcessDef:
    name: str
    command: str
    essential: bool  # without worker or beat nothing is generated: their death stops the fleet
    url: str | None = None
    title: str | None = None  # how the URL is announced


# The fleet, in start order. The repo-root Procfile lists the same commands (a test checks),
# so `honcho start` / `foreman start` and `emugen up` run the same thing.
PROCESSES: tuple[ProcessDef, ...] = (
    ProcessDef("worker", "celery -A emugen worker -Q generate,pipeline --concurrency 2 "
                         "--loglevel INFO", essential=True),
    ProcessDef("beat", "celery -A emugen beat --loglevel INFO", essential=True),
    # Basic auth comes from FLOWER_BASIC_AUTH; Flower keeps every task in memory: bound it.
    ProcessDef("flower", "celery -A emugen flower --address=127.0.0.1 --port=5555 "
                         "--max_tasks=10000", essential=False, url="http://127.0.0.1:5555",
               title="Flower"),
    ProcessDef("web", "emugen web --host 127.0.0.1 --port 8000", essential=False,
               url="http://127.0.0.1:8000", title="dashboard"),
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
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)


class Fleet:
    """Starts the processes with their output in log files, watches them, stops them in order."""

    def __init__(self, processes: Sequence[ProcessDef], env: Mapping[str, str], log_dir: Path,
                 say: Callable[[str], None]) -> None:
        self.processes = processes
        self.env = dict(env)
        self.log_dir = log_dir
        self.say = say
        self.children: list[Child] = []

    def start(self) -> None:
        from emugen.broker import child_options

        self.log_dir.mkdir(parents=True, exist_ok=True)
        for spec in self.processes:
            child = Child(spec, self.log_dir / f"{spec.name}.log")
            self.children.append(child)
            with child.log_path.open("ab") as log:
                stamp = datetime.now(UTC).isoformat(timespec="seconds")
                log.write(f"\n=== emugen up {stamp}: {spec.command}\n".encode())
                log.flush()
                try:
                    child.popen = subprocess.Popen(
                        resolve(spec.command), stdout=log, stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL, env=self.env, **child_options())
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
        from emugen.broker import tail

        name = child.spec.name
        if child.error is not None:
            head = f"{name} could not be started: {child.error}"
        else:
            assert child.popen is not None
            seconds = time.monotonic() - child.started
            head = (f"{name} {_ended(child.popen.returncode)} after {seconds:.1f} s; "
                    f"{child.log_path} ends with:\n{tail(child.log_path)}")
        if child.spec.essential:
            return f"ERROR: {head}\nthe fleet cannot run without {name}: stopping everything"
        return f"WARNING: {head}\nthe rest of the fleet keeps running without {name}"

    def stop(self, timeout: float = STOP_TIMEOUT_S,
             hurry: Callable[[], bool] = lambda: False) -> None:
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
            child.popen.send_signal(signal.SIGTERM)
        began = time.monotonic()
        took: dict[str, float] = {}  # how long each one needed, for the user to see
        while True:
            for child in live:
                if child.spec.name not in took and not child.alive:
                    took[child.spec.name] = time.monotonic() - began
            if len(took) == len(live) or time.monotonic() - began >= timeout or hurry():
                break
            time.sleep(0.05)
        for child in live:
            assert child.popen is not None
            if child.alive:
                self.say(f"{child.spec.name} still running after "
                         f"{time.monotonic() - began:.1f} s: killing it")
                child.signal_group(signal.SIGKILL)
            child.popen.wait()
            child.reported = True
            seconds = took.get(child.spec.name, time.monotonic() - began)
            child.signal_group(signal.SIGKILL)  # anything it left behind in its group
            self.say(f"{child.spec.name} stopped (exit code {child.popen.returncode}, "
                     f"{seconds:.1f} s)")


def _ended(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


class Console:
    """Event lines, plus one live summary line (redrawn in place on a terminal).

    A closed terminal (SIGHUP) must not abort the shutdown it asked for: output errors end
    the output, never the supervisor.
    """

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.live = False
        self.gone = False

    def _write(self, text: str, nl: bool = True) -> None:
        if self.gone:
            return
        try:
            click.echo(text, nl=nl)
        except OSError:
            self.gone = True

    def say(self, message: str) -> None:
        if self.live:
            self._write("\r\x1b[K", nl=False)
            self.live = False
        self._write(message)

    def summary(self, line: str) -> None:
        if not self.tty:
            self._write(line)
            return
        width = shutil.get_terminal_size().columns - 1
        self._write(f"\r\x1b[K{line[:width]}", nl=False)
        self.live = True


def summary_line(report: dict[str, Any], now: datetime, paused: bool = False) -> str:
    """One line from `status()`: batches in gold per stream, last batch age, quality."""
    batches = report["batches"]
    gold = ", ".join(f"{stream} {states.get('gold', 0)}"
                     for stream, states in sorted(batches.items())) or "none yet"
    parts = [now.strftime("%H:%M:%S"), f"in gold: {gold}"]
    latest = report["latest"]
    if latest:
        last = datetime.fromisoformat(latest[0]["scheduled_at"])
        last = last if last.tzinfo else last.replace(tzinfo=UTC)
        parts.append(f"last batch {max(0.0, (now - last).total_seconds()):.1f} s ago")
    failed = sum(states.get("failed", 0) for states in batches.values())
    if failed:
        parts.append(f"FAILED {failed}")
    parts.append(f"quarantined {report['layers']['quarantine']}")
    r = report["reconciliation"]
    if r["injected"]:
        alarms = sum(r["false_alarms"].values())
        verdict = "" if r["ok"] else f" ALARM: missed {r['missed']}, false alarms {alarms}"
        parts.append(f"caught {r['caught_pct']:.1f} %{verdict}")
    if paused:
        parts.append("PAUSED (emugen resume)")
    return " | ".join(parts)


def read_summary(engine: Any) -> str:
    from emugen.control import is_paused
    from emugen.db.session import read_session
    from emugen.pipeline.status import status

    try:
        with read_session(engine) as session:
            return summary_line(status(session, latest=1), datetime.now(UTC), is_paused(session))
    except Exception as exc:  # noqa: BLE001 - a busy database must not stop the supervisor
        return f"{datetime.now(UTC):%H:%M:%S} summary unavailable: {exc.__class__.__name__}: {exc}"


class Signals:
    """Ctrl-C, SIGTERM and SIGHUP ask for a clean stop; a second one stops waiting."""

    HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.count = 0
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> Signals:
        for signum in self.HANDLED:
            self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, _frame: Any) -> None:
        self.count += 1

    @property
    def stop(self) -> bool:
        return self.count > 0

    @property
    def hurry(self) -> bool:
        return self.count > 1


def supervise(fleet: Fleet, engine: Any, console: Console, signals: Signals) -> Child | None:
    """Watch until a stop is asked (None) or an essential process dies (that process)."""
    next_summary = time.monotonic() + SUMMARY_EVERY_S
    while not signals.stop:
        dead = fleet.check()
        if dead is not None:
            return dead
        if time.monotonic() >= next_summary:
            console.summary(read_summary(engine) + fleet.down())
            next_summary = time.monotonic() + SUMMARY_EVERY_S
        time.sleep(0.1)
    return None


@click.command("up")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Config file (default: $EMUGEN_CONFIG or config/emugen.yaml).")
@click.option("--stop-timeout", type=click.FloatRange(min=1), default=STOP_TIMEOUT_S,
              show_default=True, help="Seconds each process gets to stop before it is killed.")
def up_cmd(config_file: Path | None, stop_timeout: float) -> None:
    """Run the whole fleet: Redis (private if none answers), database, worker, beat, Flower,
    dashboard; print a live summary; Ctrl-C stops everything cleanly."""
    from emugen.broker import ensure_broker, redact_url
    from emugen.db.session import engine_for, init_db
    from emugen.settings import config_path, load_settings
    from emugen.vocabulary import Stream

    console = Console()
    path = config_path(config_file)
    settings = load_settings(path)
    auth = flower_auth(os.environ)
    console.say(f"emugen up: {path} (mode {settings.mode.value}, companies every "
                f"{settings.interval(Stream.companies).total_seconds():g} s, events every "
                f"{settings.interval(Stream.events).total_seconds():g} s)")
    private = ensure_broker(settings.broker_url)
    dead: Child | None = None
    try:
        if private is None:
            console.say(f"broker:   the Redis answering at {redact_url(settings.broker_url)}")
        else:
            console.say(f"broker:   started a private redis-server at {redact_url(private.url)} "
                        f"(pid {private.pid}, {private.binary}; data in {private.data_dir}/, "
                        f"log {private.log_path})")
        engine = engine_for(settings.database_url)
        init_db(engine)
        console.say(f"database: {redact_url(settings.database_url)} ready")
        env = {**os.environ, "EMUGEN_CONFIG": str(path.resolve()),
               "EMUGEN_BROKER_URL": settings.broker_url, "FLOWER_BASIC_AUTH": auth.value,
               "PYTHONUNBUFFERED": "1"}  # logs reach the files as they happen
        fleet = Fleet(PROCESSES, env, LOG_DIR, console.say)
        console.say(f"processes (output in {LOG_DIR}/<name>.log):")
        with Signals() as signals:
            try:
                fleet.start()
                _print_urls(console, auth)
                dead = supervise(fleet, engine, console, signals)
                if dead is None:
                    console.say("stopping the fleet (Ctrl-C again to stop waiting)")
            finally:
                fleet.stop(stop_timeout, hurry=lambda: signals.hurry)
    finally:
        if private is not None:
            console.say(f"stopping the private redis-server (pid {private.pid}, SHUTDOWN SAVE)")
            private.stop()
    if dead is not None:
        how = (f"could not be started ({dead.error})" if dead.popen is None
               else _ended(dead.popen.returncode))
        raise FleetError(f"{dead.spec.name} {how}, so the whole fleet was stopped; see "
                         f"{dead.log_path}, fix the cause and run `emugen up` again")
    console.say("emugen up: everything stopped")


def _print_urls(console: Console, auth: FlowerAuth) -> None:
    for spec in PROCESSES:
        if spec.url:
            console.say(f"{spec.title or spec.name:10} {spec.url}")
    if auth.generated:
        console.say(f"Flower login: {auth.user} / {auth.password} (generated for this run; set "
                    "FLOWER_BASIC_AUTH=user:password to choose your own)")
    else:
        console.say(f"Flower login: {auth.user} / (the password in FLOWER_BASIC_AUTH)")
    console.say("Ctrl-C stops everything; a summary follows every "
                f"{SUMMARY_EVERY_S:g} s")
