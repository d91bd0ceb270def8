"""A real `emugen web` process (uvicorn): an SSE client storm, schemathesis, promtool."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from emugen.fleet.broker import free_port
from tests.integration.conftest import REPO_ROOT, wait_for
from tests.test_web_api import Store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "process-test-token-0123456789"
STORM_CLIENTS = 1_000
STORM_ROUNDS = 3
HOLD_S = 1.5
FIRST_SNAPSHOT_S = 1.0  # the acceptance bound for a new client after the storm


@dataclass
class WebProcess:
    url: str  # always 127.0.0.1, whatever address the process listens on
    port: int
    config: Path
    log: Path
    process: subprocess.Popen[bytes]

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def emugen_web(folder: Path, *, token: str | None = None) -> Iterator[WebProcess]:
    """`emugen web` on a free port over a small store; beyond loopback when given a token.

    The broker URL names a port nothing listens on: the probe reports it down, and
    /api/clean can never purge the machine's shared Redis.
    """
    store = Store(folder, f"sqlite:///{folder / 'emugen.db'}", rounds=2)
    text = store.config.read_text(encoding="utf-8")
    store.config.write_text(
        text.replace("redis://127.0.0.1:6379/0", f"redis://127.0.0.1:{free_port()}/0"),
        encoding="utf-8",
    )
    port = free_port()
    log = folder / "web.log"
    with web_server(store.config, port, log, token=token) as process:
        yield WebProcess(f"http://127.0.0.1:{port}", port, store.config, log, process)


@contextlib.contextmanager
def web_server(
    config: Path, port: int, log: Path, *, token: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`emugen web` as its own process on `port` (beyond loopback when given a token), until
    it answers; stopped by its process group afterwards. The log is appended to, so one file
    can follow a server restarted on the same port."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("EMUGEN_DATABASE_URL", "EMUGEN_BROKER_URL", "EMUGEN_WEB_TOKEN")
    }
    env["PYTHONUNBUFFERED"] = "1"
    if token:
        env["EMUGEN_WEB_TOKEN"] = token
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emugen",
                "web",
                "--host",
                "0.0.0.0" if token else "127.0.0.1",
                "--port",
                str(port),
                "--config",
                str(config),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: (
                process.poll() is None
                and _answers(url)
                or (
                    process.poll() is not None
                    and pytest.fail(f"emugen web exited:\n{log.read_text(errors='replace')}")
                )
            ),
            30,
            "emugen web to answer",
        )
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


# -- the SSE storm ---------------------------------------------------------------------------


def _request(port: int, path: str = "/api/stream") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()


async def _churn(config: Path, every: float) -> None:
    """Touch the config file every `every` s: each touch is a new snapshot to broadcast, so
    clients are woken (and cancelled) while a broadcast is under way, as on a busy fleet."""
    while True:
        os.utime(config, ns=(time.time_ns(), time.time_ns()))
        await asyncio.sleep(every)


async def _storm(port: int, config: Path, clients: int, hold: float) -> int:
    """`clients` stream connections at once, held `hold` s, then all dropped together while
    snapshots keep changing."""
    churn = asyncio.create_task(_churn(config, 0.02))

    async def connect() -> asyncio.StreamWriter | None:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return None
        writer.write(_request(port))
        return writer

    writers = [w for w in await asyncio.gather(*(connect() for _ in range(clients))) if w]
    await asyncio.sleep(hold)
    for writer in writers:
        writer.transport.abort()  # no goodbye: as when a thousand tabs close at once
    await asyncio.sleep(0.5)
    churn.cancel()
    return len(writers)


async def _first_snapshot(port: int, within: float) -> bytes:
    """The bytes a new stream client has read when its first snapshot is complete."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_request(port))
    seen = b""
    try:
        async with asyncio.timeout(within):
            while b"event: snapshot\n" not in seen or not seen.rstrip(b"\r\n").endswith(b"}"):
                chunk = await reader.read(65536)
                if not chunk:
                    break
                seen += chunk
    except TimeoutError:
        pass
    finally:
        writer.transport.abort()
    return seen


def test_a_thousand_clients_leaving_at_once_leave_the_stream_serving_snapshots(tmp_path):
    with emugen_web(tmp_path) as web:
        assert b"event: snapshot" in asyncio.run(_first_snapshot(web.port, 10))
        for _ in range(STORM_ROUNDS):
            opened = asyncio.run(_storm(web.port, web.config, STORM_CLIENTS, HOLD_S))
            assert opened >= STORM_CLIENTS * 0.9, f"only {opened} connections opened"
        # the server has worked through the disconnections once it answers a plain request
        wait_for(lambda: _answers(web.url), 30, "emugen web to answer after the storm")
        seen = asyncio.run(_first_snapshot(web.port, FIRST_SNAPSHOT_S))
        assert b"retry: 1000" in seen
        assert b"event: snapshot\n" in seen, (
            f"no snapshot within {FIRST_SNAPSHOT_S} s after the storm; got {seen[-300:]!r}\n"
            f"{web.text()[-3000:]}"
        )
        assert "Traceback" not in web.text() and "Lock is not acquired" not in web.text()


# -- external checkers: schemathesis, promtool ---------------------------------------------------

ST_EXAMPLES = 25  # per operation: ~10 s a run here


@pytest.mark.parametrize("token", [None, TOKEN], ids=["loopback", "with-token"])
def test_schemathesis_finds_no_failure_of_any_check(tmp_path, token):
    # the batch page's endpoints get a batch the store holds, so their paging is fuzzed
    # rather than every call being a 404 (test_batch_page fuzzes the ids themselves)
    (tmp_path / "schemathesis.toml").write_text(
        '[parameters]\n"path.batch_id" = "events-000000001"\n', encoding="utf-8"
    )
    with emugen_web(tmp_path, token=token) as web:
        argv = [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{web.url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(ST_EXAMPLES),
            "--seed",
            "1",
            "--request-timeout",
            "10",
            # an event stream never ends: the SSE tests above exercise it
            "--exclude-path",
            "/api/stream",
        ]
        if token:
            argv += ["--header", f"Authorization: Bearer {token}"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout
    assert "/api/batches/{batch_id}/records" not in done.stdout  # named only in a warning


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(
                "CI is set but promtool is missing (scripts/test.sh installs Debian's "
                "prometheus package)"
            )
        pytest.skip("promtool is missing (apt-get install -y prometheus); CI runs this")
    return found


def test_promtool_accepts_the_metrics_exposition(tmp_path):
    promtool = _promtool()
    with emugen_web(tmp_path) as web:
        body = httpx.get(f"{web.url}/metrics", timeout=10).text
    assert "emugen_mode{" in body and "emugen_last_gold_timestamp_seconds{" in body
    done = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


async def _declare_huge_body(port: int, size: int) -> bytes:
    """Headers announcing `size` bytes of body, and no body at all: the answer must come
    without the server waiting for (or buffering) what was announced."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"POST /api/mode HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
            f"application/json\r\nContent-Length: {size}\r\n\r\n"
        ).encode()
    )
    try:
        async with asyncio.timeout(10):
            return await reader.readuntil(b"}")
    finally:
        writer.transport.abort()


def test_a_declared_50_mb_body_is_refused_before_any_of_it_is_sent(tmp_path):
    with emugen_web(tmp_path) as web:
        answer = asyncio.run(_declare_huge_body(web.port, 50_000_000))
    assert answer.startswith(b"HTTP/1.1 413 ") and b"16,384-byte limit" in answer
