"""SSE benchmark: a gold commit to its snapshot at a client, pushed on commit vs polled."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from emugen.errors import import_extra
from emugen.fleet.broker import free_port
from emugen.fleet.supervisor import stop as stop_process
from emugen.fleet.supervisor import wait_for
from emugen.lab.sse_report import (
    TARGET_PUSH_P95_MS,
    TARGET_PUSH_TO_POLL,
    format_sse,
    ratio,
    stats,
    target,
)
from emugen.lab.webserver import bench_config, start_web, wait_healthy
from emugen.web import POLL_INTERVAL_S, QUIET_POLL_S

PAGE_POLL_S = 1.0  # dashboard.js POLL_MS: the page's fallback while the stream is down


@click.command("sse")
@click.option(
    "--batches",
    type=click.IntRange(min=1),
    default=120,
    show_default=True,
    help="How many batches to measure.",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(0.05, 10.0),
    default=PAGE_POLL_S,
    show_default=True,
    help="The polling fallback's period (the page's is 1 s).",
)
@click.option(
    "--server-poll",
    type=click.FloatRange(0.01, 10.0),
    default=POLL_INTERVAL_S,
    show_default=True,
    help="How often `emugen web` checks the database for a change (--poll-interval).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option(
    "--strict",
    is_flag=True,
    help=f"Exit 1 unless push p95 <= {TARGET_PUSH_P95_MS:g} ms and <= "
    f"{TARGET_PUSH_TO_POLL:g}x the server poll's p95 in this run.",
)
def sse_cmd(
    batches: int, poll_interval: float, server_poll: float, as_json: bool, strict: bool
) -> None:
    """Gold commit -> snapshot at an SSE client, p50/p95, beside the polling fallback.

    \b
    Example:
      emugen lab bench sse --batches 120 --strict
    """
    result = bench_sse(batches=batches, poll_interval=poll_interval, server_poll=server_poll)
    click.echo(json.dumps(result, indent=2) if as_json else format_sse(result))
    if strict and not result["target"]["met"]:
        sys.exit(1)


class Arrivals:
    """(when, gold batches) of every snapshot one client received."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, int]] = []
        self.cond = threading.Condition()

    def add(self, gold: int) -> None:
        with self.cond:
            self.seen.append((time.perf_counter(), gold))
            self.cond.notify_all()

    def first(self, gold: int, timeout: float) -> float | None:
        """When the client first saw at least `gold` batches in gold."""

        def found() -> float | None:
            return next((t for t, g in self.seen if g >= gold), None)

        with self.cond:
            self.cond.wait_for(lambda: found() is not None, timeout)
            return found()


def _gold(snapshot: dict[str, Any]) -> int:
    return sum(s["gold"] for s in snapshot["streams"].values())


def _read_stream(client: Any, url: str, into: Arrivals, stop: threading.Event) -> None:
    try:
        with client.stream("GET", f"{url}/api/stream") as response:
            data: list[str] = []
            kind = "message"
            for line in response.iter_lines():
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line:
                    if data and kind == "snapshot":  # `alive` heartbeats carry no counters
                        into.add(_gold(json.loads("".join(data))))
                    data, kind = [], "message"
    except Exception:  # noqa: BLE001 - the server going away at the end is expected
        if not stop.is_set():
            raise


def _poll(
    client: Any,
    url: str,
    every: float,
    into: Arrivals,
    request_ms: list[float],
    stop: threading.Event,
) -> None:
    due = time.perf_counter()
    while not stop.is_set():
        started = time.perf_counter()
        try:
            snapshot = client.get(f"{url}/api/snapshot").json()
        except Exception:  # noqa: BLE001
            if stop.is_set():
                return
            raise
        request_ms.append((time.perf_counter() - started) * 1000)
        into.add(_gold(snapshot))
        due += every  # a fixed period, like the page's setInterval
        stop.wait(max(0.0, due - time.perf_counter()))


@dataclass
class Server:
    """One `emugen web` of the run and the SSE client that listens to it."""

    name: str
    url: str
    process: subprocess.Popen
    log: Path
    arrivals: Arrivals = field(default_factory=Arrivals)

    def tail(self) -> str:
        return f"{self.name} server log:\n{self.log.read_text(errors='replace')[-2000:]}"


def _commit(engine: Any, settings: Any, stream: Any, at: Any, redis_url: str) -> float:
    """One batch through every layer, each stage announcing its commit as a worker's does
    (emugen.fleet.worker.run_stage); returns when the gold commit returned."""
    from emugen.db.session import write_session
    from emugen.fleet.announce import announce
    from emugen.pipeline import gold, silver
    from emugen.pipeline.bronze import Origin, generate_and_land

    landed = generate_and_land(engine, settings, stream, at, origin=Origin("bench"))
    announce(redis_url, "bronze", landed.batch_id)
    with write_session(engine) as session:
        silver.run(session, landed.batch_id)
    announce(redis_url, "silver", landed.batch_id)
    with write_session(engine) as session:
        gold.run(session, landed.batch_id)
    committed = time.perf_counter()
    announce(redis_url, "gold", landed.batch_id)
    return committed


def bench_sse(
    batches: int = 120,
    poll_interval: float = PAGE_POLL_S,
    server_poll: float = POLL_INTERVAL_S,
    seed: int = 7,
) -> dict[str, Any]:
    """Two `emugen web` subprocesses on one fresh SQLite store: one on a Redis broker, woken by
    the stages' announcements (push), one on no broker, checking the store every `server_poll`
    s (today's poll, the fallback). Land batches one at a time in this process, each stage
    announcing as a worker does, and time each gold commit to the first snapshot showing it at
    each server's SSE client, and at a client polling /api/snapshot like the page's fallback."""
    from emugen.fleet.broker import start_private

    with tempfile.TemporaryDirectory(prefix="emugen-bench-sse-") as tmp:
        folder = Path(tmp)
        redis = start_private(
            f"redis://127.0.0.1:{free_port()}/0", folder / "redis", folder / "redis.log"
        )
        try:
            run = SseRun(folder, redis.url, server_poll, poll_interval)
            try:
                run.start()
                figures = run.measure(batches, random.Random(seed))
            finally:
                run.close()
        finally:
            redis.stop()
    pushed, checked, page = (stats(figures[k]) for k in ("push", "poll", "page"))
    return {
        "batches": batches,
        "server_poll_s": server_poll,
        "poll_interval_s": poll_interval,
        "quiet_poll_s": max(server_poll, QUIET_POLL_S),
        "sse_ms": pushed,
        "sse_poll_ms": checked,
        "polling_ms": page,
        "push_gain_p50": ratio(checked["p50"], pushed["p50"]),
        "push_gain_p95": ratio(checked["p95"], pushed["p95"]),
        "push_to_poll_p50": ratio(pushed["p50"], checked["p50"], 2),
        "push_to_poll_p95": ratio(pushed["p95"], checked["p95"], 2),
        "target": target(pushed["p95"], checked["p95"]),
        "ratio_p50": ratio(page["p50"], pushed["p50"]),
        "ratio_p95": ratio(page["p95"], pushed["p95"]),
        "snapshot_request_ms": stats(run.request_ms),
    }


class SseRun:
    """The two servers, their SSE clients, the page-like poller, and the store they read."""

    def __init__(
        self, folder: Path, redis_url: str, server_poll: float, poll_interval: float
    ) -> None:
        httpx = import_extra("httpx", "lab", "emugen bench sse")  # before anything starts
        from emugen.db.session import init_db, make_engine
        from emugen.settings import load_settings

        self.folder, self.redis_url = folder, redis_url
        self.server_poll, self.poll_interval = server_poll, poll_interval
        self.push_config = bench_config(folder, "push", redis_url)
        self.settings = load_settings(bench_config(folder, "poll", "memory://"), env=False)
        self.engine = make_engine(self.settings.database_url)
        init_db(self.engine)
        self.servers: list[Server] = []
        self.stop = threading.Event()
        self.polled = Arrivals()
        self.request_ms: list[float] = []
        self.clients = [httpx.Client(timeout=httpx.Timeout(10, read=None)) for _ in range(4)]
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for name, config in (("push", self.push_config), ("poll", self.folder / "poll.yaml")):
            port, log = free_port(), self.folder / f"web-{name}.log"
            self.servers.append(
                Server(
                    name,
                    f"http://127.0.0.1:{port}",
                    start_web(config, port, self.server_poll, log),
                    log,
                )
            )
        for server in self.servers:
            wait_healthy(self.clients[0], server.url, server.process, server.log)
        self.threads = [
            threading.Thread(
                target=_read_stream,
                daemon=True,
                args=(self.clients[1 + n], s.url, s.arrivals, self.stop),
            )
            for n, s in enumerate(self.servers)
        ]
        self.threads.append(
            threading.Thread(
                target=_poll,
                daemon=True,
                args=(
                    self.clients[3],
                    self.servers[1].url,
                    self.poll_interval,
                    self.polled,
                    self.request_ms,
                    self.stop,
                ),
            )
        )
        for t in self.threads:
            t.start()
        for server in self.servers:
            if server.arrivals.first(0, 10) is None:
                raise RuntimeError(f"no snapshot on /api/stream\n{server.tail()}")
        # the push server's subscription may still be connecting: measure once it stands
        _await_subscription(self.clients[0], self.servers[0])

    def measure(self, batches: int, rng: random.Random) -> dict[str, list[float]]:
        from emugen.pipeline.runner import STREAM_ORDER, TickClock

        clock, commits = TickClock(), []
        for k in range(1, batches + 1):
            # Commits must not follow a poller's rhythm, or its figure would be biased:
            # each waits only for the two pushed snapshots, then a random pause.
            time.sleep(rng.uniform(0.1, 0.5))
            stream = STREAM_ORDER[(k - 1) % len(STREAM_ORDER)]
            commits.append(
                _commit(self.engine, self.settings, stream, clock.next(), self.redis_url)
            )
            for server in self.servers:
                if server.arrivals.first(k, 10) is None:
                    raise RuntimeError(f"batch {k} never pushed\n{server.tail()}")
        figures: dict[str, list[float]] = {"push": [], "poll": [], "page": []}
        for k, committed in enumerate(commits, start=1):
            seen = self.polled.first(k, 3 * self.poll_interval + 5)
            if seen is None:
                raise RuntimeError(f"batch {k} never polled\n{self.servers[1].tail()}")
            figures["page"].append((seen - committed) * 1000)
            for server in self.servers:
                arrived = server.arrivals.first(k, 0)
                assert arrived is not None
                figures[server.name].append((arrived - committed) * 1000)
        return figures

    def close(self) -> None:
        self.stop.set()
        for c in self.clients:
            c.close()
        for server in self.servers:
            stop_process(server.process, timeout=10)
        for t in self.threads:
            t.join(5)
        self.engine.dispose()


def _await_subscription(client: Any, push: Server) -> None:
    """Until the push server says its subscription to the announcements stands."""

    def subscribed() -> bool:
        return bool(client.get(f"{push.url}/api/snapshot").json().get("pushed"))

    wait_for(subscribed, 15, f"the push server to subscribe to the announcements\n{push.tail()}")
