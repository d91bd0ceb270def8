"""The delaying TCP proxy (emugen/lab/proxy.py): bytes intact, each way late, EOF forwarded."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import sys
import time

import pytest

from emugen.fleet.broker import free_port
from emugen.lab.proxy import Route, serve

DELAY = 0.05


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while chunk := await reader.read(65536):
        writer.write(chunk)
        await writer.drain()
    writer.close()


async def _through_proxy(check) -> None:  # noqa: ANN001 - an async callable(port)
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    target = echo.sockets[0].getsockname()[1]
    port = free_port()
    started = asyncio.Event()
    proxy = asyncio.create_task(
        serve([Route("127.0.0.1", port, "127.0.0.1", target)], DELAY, started)
    )
    await started.wait()
    try:
        await check(port)
    finally:
        proxy.cancel()
        echo.close()


def test_a_round_trip_through_the_proxy_takes_at_least_the_delay_each_way() -> None:
    async def check(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(3):
            began = time.perf_counter()
            writer.write(b"ping\n")
            assert await reader.readline() == b"ping\n"
            assert time.perf_counter() - began >= 2 * DELAY
        writer.close()

    asyncio.run(_through_proxy(check))


def test_a_large_stream_arrives_intact_and_in_order_and_its_end_is_forwarded() -> None:
    payload = os.urandom(3 * 1024 * 1024)

    async def check(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def send() -> None:
            for i in range(0, len(payload), 10_000):
                writer.write(payload[i : i + 10_000])
                await writer.drain()
            writer.write_eof()  # the echo server sees the end only through the proxy

        sending = asyncio.create_task(send())
        echoed = await reader.read()  # returns once the echo's close came back through
        await sending
        assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()
        writer.close()

    asyncio.run(_through_proxy(check))


def test_the_delay_does_not_add_up_over_messages_sent_back_to_back() -> None:
    async def check(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sent = []
        for i in range(20):  # 20 messages 10 ms apart: a proxy that waited the delay per
            sent.append(time.perf_counter())  # chunk would return the last ~1 s late
            writer.write(b"%02d\n" % i)
            await asyncio.sleep(0.01)
        late = []
        for i in range(20):
            assert await reader.readline() == b"%02d\n" % i
            late.append(time.perf_counter() - sent[i])
        assert min(late) >= 2 * DELAY
        assert max(late) < 2 * DELAY + 0.5
        writer.close()

    asyncio.run(_through_proxy(check))


def test_a_refusing_target_closes_the_client_connection() -> None:
    async def run() -> None:
        port, dead = free_port(), free_port()
        started = asyncio.Event()
        proxy = asyncio.create_task(
            serve([Route("127.0.0.1", port, "127.0.0.1", dead)], DELAY, started)
        )
        await started.wait()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        proxy.cancel()

    asyncio.run(run())


def test_the_command_line_announces_its_routes_and_forwards() -> None:
    with socket.create_server(("127.0.0.1", 0)) as target:
        port = free_port()
        route = f"127.0.0.1:{port}=127.0.0.1:{target.getsockname()[1]}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "emugen.lab.proxy", "--delay", "0.05", route],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().startswith(f"listening 127.0.0.1:{port} -> ")
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                server, _ = target.accept()
                with server:
                    client.sendall(b"hello")
                    server.settimeout(5)
                    assert server.recv(5) == b"hello"
        finally:
            proc.terminate()
            proc.wait(10)


def test_a_malformed_route_is_refused_naming_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "emugen.lab.proxy", "127.0.0.1:1=nowhere"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "route '127.0.0.1:1=nowhere'" in done.stderr
    with pytest.raises(ValueError, match="LISTEN_HOST:PORT=TARGET_HOST:PORT"):
        Route.parse("127.0.0.1:x=127.0.0.1:2")
