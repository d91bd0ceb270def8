"""`emugen up`: the console, the live summary and the command; the fleet itself is fleet/up.py."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from emugen.errors import FleetError
from emugen.fleet.supervisor import FLEET_ENV, ended, flower_accepts, serves_fleet
from emugen.fleet.up import (
    LOG_DIR,
    PROCESSES,
    STOP_TIMEOUT_S,
    SUMMARY_EVERY_S,
    Child,
    Fleet,
    FlowerAuth,
    check_ports,
    flower_auth,
    on_ports,
)

# Heavy modules (redis, SQLAlchemy, the pipeline) are imported inside the command, so that
# `emugen --help` and every other command do not pay for them.


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
    gold = (
        ", ".join(f"{stream} {states.get('gold', 0)}" for stream, states in sorted(batches.items()))
        or "none yet"
    )
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
    elif report.get("due") is not None:
        from emugen.fleet.due import brief

        parts.append(brief(report["due"]))
    return " | ".join(parts)


def read_summary(engine: Any, client: Any = None) -> str:
    """The summary line; `client` (the broker's Redis) gives beat's plan of what is due."""
    from emugen.db.session import read_session
    from emugen.fleet.control import is_paused
    from emugen.fleet.due import read_quietly
    from emugen.status.report import status

    try:
        due = read_quietly(client)
        with read_session(engine) as session:
            return summary_line(
                status(session, latest=1, due=due), datetime.now(UTC), is_paused(session)
            )
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


Probe = Callable[[str], bool]  # url -> does it answer as this fleet?


class Banner:
    """The URLs `up` prints: each one only after it answered as this fleet.

    A port can be served by somebody else's dashboard or Flower (our process then dies on
    "address in use", or has not bound yet): its URL would lead the user to the wrong fleet.
    So each URL waits for its probe (`probes[name]`) to say it is ours; a process that died,
    or did not answer as ours within `wait_s`, gets no URL but a warning.
    """

    EVERY_S = 0.5

    def __init__(
        self,
        children: Sequence[Child],
        probes: Mapping[str, Probe],
        say: Callable[[str], None],
        extra: Mapping[str, str] | None = None,
        wait_s: float = 120.0,
    ) -> None:
        self.pending = [c for c in children if c.spec.url and c.spec.name in probes]
        self.probes, self.say, self.extra, self.wait_s = probes, say, extra or {}, wait_s
        self.started = time.monotonic()
        self.next_probe = 0.0

    def poll(self) -> None:
        if not self.pending or time.monotonic() < self.next_probe:
            return
        self.next_probe = time.monotonic() + self.EVERY_S
        for child in list(self.pending):
            spec = child.spec
            assert spec.url is not None
            if not child.alive:  # fleet.check says how it died
                self.pending.remove(child)
            elif self.probes[spec.name](spec.url):
                self.pending.remove(child)
                self.say(f"{spec.title or spec.name:10} {spec.url}")
                if spec.name in self.extra:
                    self.say(self.extra[spec.name])
            elif time.monotonic() - self.started > self.wait_s:
                self.pending.remove(child)
                self.say(
                    f"WARNING: {spec.url} did not answer as this fleet's {spec.title} "
                    f"within {self.wait_s:g} s, so it is not shown; see {child.log_path}"
                )


def _probes(fleet_id: str, auth: FlowerAuth) -> dict[str, Probe]:
    user, _, password = auth.value.split(",")[0].partition(":")
    return {
        "web": lambda url: serves_fleet(url, fleet_id),
        "flower": lambda url: flower_accepts(url, user, password),
    }


def supervise(
    fleet: Fleet,
    engine: Any,
    console: Console,
    signals: Signals,
    client: Any = None,
    banner: Banner | None = None,
) -> Child | None:
    """Watch until a stop is asked (None) or an essential process dies (that process)."""
    next_summary = time.monotonic() + SUMMARY_EVERY_S
    while not signals.stop:
        dead = fleet.check()
        if dead is not None:
            return dead
        if banner is not None:
            banner.poll()
        if time.monotonic() >= next_summary:
            console.summary(read_summary(engine, client) + fleet.down())
            next_summary = time.monotonic() + SUMMARY_EVERY_S
        time.sleep(0.1)
    return None


@click.command("up")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file (default: $EMUGEN_CONFIG or config/emugen.yaml).",
)
@click.option(
    "--stop-timeout",
    type=click.FloatRange(min=1),
    default=STOP_TIMEOUT_S,
    show_default=True,
    help="Seconds each process gets to stop before it is killed.",
)
@click.option(
    "--web-port",
    type=click.IntRange(1, 65535),
    envvar="EMUGEN_WEB_PORT",
    default=8000,
    show_default=True,
    show_envvar=True,
    help="Port of the dashboard on 127.0.0.1; a taken one is refused up front.",
)
@click.option(
    "--flower-port",
    type=click.IntRange(1, 65535),
    envvar="EMUGEN_FLOWER_PORT",
    default=5555,
    show_default=True,
    show_envvar=True,
    help="Port of Flower on 127.0.0.1; a taken one is refused up front.",
)
def up_cmd(config_file: Path | None, stop_timeout: float, web_port: int, flower_port: int) -> None:
    """Run the whole fleet: Redis (private if none answers), database, worker, beat, Flower,
    dashboard; print a live summary; Ctrl-C stops everything cleanly.

    \b
    Example (another fleet already on 8000 and 5555):
      emugen up --web-port 8100 --flower-port 5655
    """
    from emugen.db.session import engine_for, init_db
    from emugen.fleet.broker import ensure_broker, redact_url
    from emugen.fleet.outage import client_for
    from emugen.settings import config_path, load_settings
    from emugen.vocabulary import Stream

    console = Console()
    path = config_path(config_file)
    settings = load_settings(path)
    auth = flower_auth(os.environ)
    processes = on_ports(PROCESSES, {"web": web_port, "flower": flower_port})
    check_ports(processes)  # before anything starts: a busy port is somebody else's server
    console.say(
        f"emugen up: {path} (mode {settings.mode.value}, companies every "
        f"{settings.interval(Stream.companies).total_seconds():g} s, events every "
        f"{settings.interval(Stream.events).total_seconds():g} s)"
    )
    private = ensure_broker(settings.broker_url)
    dead: Child | None = None
    try:
        if private is None:
            console.say(f"broker:   the Redis answering at {redact_url(settings.broker_url)}")
        else:
            console.say(
                f"broker:   started a private redis-server at {redact_url(private.url)} "
                f"(pid {private.pid}, {private.binary}; data in {private.data_dir}/, "
                f"log {private.log_path})"
            )
        engine = engine_for(settings.database_url)
        init_db(engine)
        console.say(f"database: {redact_url(settings.database_url)} ready")
        fleet_id = secrets.token_hex(8)  # the dashboard names it: see Banner
        flower_url = next(p.url for p in processes if p.name == "flower")
        env = {
            **os.environ,
            "EMUGEN_CONFIG": str(path.resolve()),
            "EMUGEN_BROKER_URL": settings.broker_url,
            "FLOWER_BASIC_AUTH": auth.value,
            FLEET_ENV: fleet_id,  # the page links our Flower unless told otherwise
            "EMUGEN_FLOWER_URL": os.environ.get("EMUGEN_FLOWER_URL") or flower_url or "",
            "PYTHONUNBUFFERED": "1",
        }  # logs reach the files as they happen
        fleet = Fleet(processes, env, LOG_DIR, console.say)
        console.say(f"processes (output in {LOG_DIR}/<name>.log):")
        with Signals() as signals:
            try:
                fleet.start()
                banner = Banner(
                    fleet.children,
                    _probes(fleet_id, auth),
                    console.say,
                    {"flower": _login_line(auth)},
                )
                console.say(
                    "the dashboard's and Flower's URLs follow once they answer as this "
                    f"fleet; Ctrl-C stops everything; a summary follows every "
                    f"{SUMMARY_EVERY_S:g} s"
                )
                dead = supervise(
                    fleet, engine, console, signals, client_for(settings.broker_url), banner
                )
                if dead is None:
                    console.say("stopping the fleet (Ctrl-C again to stop waiting)")
            finally:
                fleet.stop(stop_timeout, hurry=lambda: signals.hurry)
    finally:
        if private is not None:
            console.say(f"stopping the private redis-server (pid {private.pid}, SHUTDOWN SAVE)")
            private.stop()
    if dead is not None:
        how = (
            f"could not be started ({dead.error})"
            if dead.popen is None
            else ended(dead.popen.returncode)
        )
        raise FleetError(
            f"{dead.spec.name} {how}, so the whole fleet was stopped; see "
            f"{dead.log_path}, fix the cause and run `emugen up` again"
        )
    console.say("emugen up: everything stopped")


def _login_line(auth: FlowerAuth) -> str:
    if auth.generated:
        return (
            f"Flower login: {auth.user} / {auth.password} (generated for this run; set "
            "FLOWER_BASIC_AUTH=user:password to choose your own)"
        )
    return f"Flower login: {auth.user} / (the password in FLOWER_BASIC_AUTH)"
