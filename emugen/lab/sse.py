"""SSE benchmark: a batch's gold commit to its snapshot at a client, vs the polling fallback."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import click

from emugen.broker import free_port
from emugen.supervisor import FleetStartError, spawn, wait_for
from emugen.supervisor import stop as stop_process
from emugen.web import POLL_INTERVAL_S

PAGE_POLL_S = 1.0  # dashboard.js POLL_MS: the page's fallback while the stream is down


@click.command("sse")
@click.option("--batches", type=click.IntRange(min=1), default=120, show_default=True)
@click.option("--poll-interval", type=click.FloatRange(0.05, 10.0), default=PAGE_POLL_S,
              show_default=True, help="The polling fallback's period (the page's is 1 s).")
@click.option("--server-poll", type=click.FloatRange(0.01, 10.0), default=POLL_INTERVAL_S,
              show_default=True,
              help="How often `emugen web` checks the database for a change (--poll-interval).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def sse_cmd(batches: int, poll_interval: float, server_poll: float, as_json: bool) -> None:
    """Gold commit -> snapshot at an SSE client, p50/p95, beside the polling fallback."""
    result = bench_sse(batches=batches, poll_interval=poll_interval, server_poll=server_poll)
    click.echo(json.dumps(result, indent=2) if as_json else format_sse(result))


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


def _poll(client: Any, url: str, every: float, into: Arrivals, request_ms: list[float],
          stop: threading.Event) -> None:
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


def _config(folder: Path) -> Path:
    import yaml

    data = {"mode": "emulated", "seed": 42, "database_url": f"sqlite:///{folder / 'bench.db'}",
            "broker_url": "memory://",
            "companies": {"emulated": {"interval": 10, "min_batch_size": 5, "max_batch_size": 5}},
            "events": {"emulated": {"interval": 10, "min_batch_size": 5, "max_batch_size": 20}}}
    path = folder / "emugen.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _start_server(config: Path, port: int, server_poll: float, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items()
           if k not in ("EMUGEN_DATABASE_URL", "EMUGEN_BROKER_URL")}
    return spawn([sys.executable, "-m", "emugen", "web", "--port", str(port), "--config",
                  str(config), "--poll-interval", str(server_poll)], log, env=env)


def _wait_healthy(client: Any, url: str, server: subprocess.Popen, log: Path) -> None:
    def healthy() -> bool:
        if server.poll() is not None:
            raise FleetStartError(
                f"emugen web exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            return client.get(f"{url}/api/health").status_code == 200
        except Exception:  # noqa: BLE001 - not listening yet
            return False

    wait_for(healthy, 30, f"emugen web to answer /api/health (its log: {log})")


def _stats(values: list[float]) -> dict[str, float | None]:
    from emugen.web.batches import summary

    s = summary(values)
    mean = sum(values) / len(values) if values else None
    return {k: None if v is None else round(v, 1) for k, v in
            {"p50": s["p50"], "p95": s["p95"], "max": s["max"], "mean": mean}.items()}


def _ratio(slow: float | None, fast: float | None) -> float | None:
    """How many times `fast` beats `slow`; None when either side has no figure (or fast is 0)."""
    return round(slow / fast, 1) if slow is not None and fast else None


def bench_sse(batches: int = 120, poll_interval: float = PAGE_POLL_S,
              server_poll: float = POLL_INTERVAL_S, seed: int = 7) -> dict[str, Any]:
    """Run `emugen web` as a subprocess on a fresh SQLite store; land batches one at a time in
    this process; time each gold commit to the first snapshot showing it, at an SSE client and
    at a client polling /api/snapshot, both running meanwhile."""
    import httpx

    from emugen.db.session import init_db, make_engine
    from emugen.pipeline.bronze import Origin, generate_and_land
    from emugen.pipeline.runner import STREAM_ORDER, TickClock, refine_and_build
    from emugen.settings import load_settings

    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="emugen-bench-sse-") as tmp:
        folder = Path(tmp)
        config, port, log = _config(folder), free_port(), folder / "web.log"
        settings = load_settings(config, env=False)
        engine = make_engine(settings.database_url)
        init_db(engine)
        url = f"http://127.0.0.1:{port}"
        server = _start_server(config, port, server_poll, log)
        stop = threading.Event()
        pushed, polled = Arrivals(), Arrivals()
        request_ms: list[float] = []
        sse_ms: list[float] = []
        poll_ms: list[float] = []
        clients = [httpx.Client(timeout=httpx.Timeout(10, read=None)) for _ in range(3)]
        threads: list[threading.Thread] = []
        try:
            _wait_healthy(clients[0], url, server, log)
            threads = [
                threading.Thread(target=_read_stream, args=(clients[1], url, pushed, stop),
                                 daemon=True),
                threading.Thread(target=_poll, daemon=True, args=(
                    clients[2], url, poll_interval, polled, request_ms, stop))]
            for t in threads:
                t.start()
            if pushed.first(0, 10) is None:
                raise RuntimeError(f"no snapshot on /api/stream: {log.read_text()[-2000:]}")
            clock, commits = TickClock(), []
            for k in range(1, batches + 1):
                # Commits must not follow the poller's rhythm, or its figure would be biased:
                # each waits only for the pushed snapshot, then a random pause.
                time.sleep(rng.uniform(0.1, 0.5))
                stream = STREAM_ORDER[(k - 1) % len(STREAM_ORDER)]
                landed = generate_and_land(engine, settings, stream, clock.next(),
                                           origin=Origin("bench"))
                refine_and_build(engine, landed.batch_id)
                commits.append(time.perf_counter())
                if pushed.first(k, 10) is None:
                    raise RuntimeError(f"batch {k} never pushed: {log.read_text()[-2000:]}")
            for k, committed in enumerate(commits, start=1):
                arrived, seen = pushed.first(k, 0), polled.first(k, 3 * poll_interval + 5)
                if arrived is None or seen is None:
                    raise RuntimeError(f"batch {k} never polled: {log.read_text()[-2000:]}")
                sse_ms.append((arrived - committed) * 1000)
                poll_ms.append((seen - committed) * 1000)
        finally:
            stop.set()
            for c in clients:
                c.close()
            stop_process(server, timeout=10)
            for t in threads:
                t.join(5)
            engine.dispose()
    sse, poll = _stats(sse_ms), _stats(poll_ms)
    return {
        "batches": batches, "server_poll_s": server_poll, "poll_interval_s": poll_interval,
        "sse_ms": sse, "polling_ms": poll,
        "ratio_p50": _ratio(poll["p50"], sse["p50"]),
        "ratio_p95": _ratio(poll["p95"], sse["p95"]),
        "snapshot_request_ms": _stats(request_ms),
    }


def format_sse(r: dict[str, Any]) -> str:
    def row(name: str, s: dict[str, Any]) -> str:
        return f"{name:28} " + " ".join(f"{s[k]:>8.1f}" for k in ("p50", "p95", "max", "mean"))

    return "\n".join([
        f"gold commit -> snapshot at the client, {r['batches']} batches (ms)",
        f"{'':28} {'p50':>8} {'p95':>8} {'max':>8} {'mean':>8}",
        row(f"SSE (server checks {r['server_poll_s'] * 1000:g} ms)", r["sse_ms"]),
        row(f"polling every {r['poll_interval_s']:g} s", r["polling_ms"]),
        f"{'polling / SSE':28} {r['ratio_p50']:>7}x {r['ratio_p95']:>7}x",
        row("GET /api/snapshot itself", r["snapshot_request_ms"]),
    ])
