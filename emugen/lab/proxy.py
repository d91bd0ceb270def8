"""A delaying TCP proxy: fixed latency on a link where the kernel has no netem.

Each chunk read from one side is written to the other `delay` seconds after it arrived, in each
direction, without holding back the chunks behind it: a stream keeps its throughput and only its
round trips grow (by twice the delay), as on a long link. End of stream is forwarded late too.

    python -m emugen.lab.proxy --delay 0.05 127.0.0.1:6379=10.0.0.1:6379 \
        127.0.0.1:5432=10.0.0.1:5432

prints one `listening …` line per route once every route accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

CHUNK = 64 * 1024
# Chunks in flight per direction: enough for a bulk load at 50 ms, bounded so a reader that
# stops reading pushes back on the sender instead of growing the proxy's memory.
IN_FLIGHT = 1024


@dataclass(frozen=True)
class Route:
    """Accept on listen_host:listen_port, forward to target_host:target_port."""

    listen_host: str
    listen_port: int
    target_host: str
    target_port: int

    @classmethod
    def parse(cls, text: str) -> Route:
        """`HOST:PORT=HOST:PORT` (listen = target)."""
        try:
            listen, target = text.split("=")
            (lh, lp), (th, tp) = (side.rsplit(":", 1) for side in (listen, target))
            return cls(lh, int(lp), th, int(tp))
        except ValueError:
            raise ValueError(
                f"route {text!r}: expected LISTEN_HOST:PORT=TARGET_HOST:PORT"
            ) from None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy reader to writer, each chunk (and the end of stream) `delay` s after it arrived."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(IN_FLIGHT)

    async def receive() -> None:
        try:
            while chunk := await reader.read(CHUNK):
                await queue.put((loop.time() + delay, chunk))
        finally:
            await queue.put((loop.time() + delay, b""))  # end of stream, or the side broke

    receiving = asyncio.create_task(receive())
    try:
        while True:
            due, chunk = await queue.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            if not chunk:
                if writer.can_write_eof():
                    writer.write_eof()  # a half-close travels, late, like the data
                break
            writer.write(chunk)
            await writer.drain()
    finally:
        receiving.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await receiving


async def _relay(
    route: Route,
    delay: float,
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
) -> None:
    try:
        server_reader, server_writer = await asyncio.open_connection(
            route.target_host, route.target_port
        )
    except OSError:
        client_writer.close()  # the target refuses: so does the proxy, as the link would
        return
    try:
        async with asyncio.TaskGroup() as both:
            both.create_task(_pipe(client_reader, server_writer, delay))
            both.create_task(_pipe(server_reader, client_writer, delay))
    except* OSError:
        pass  # one side reset or timed out: drop both, as a broken link would
    finally:
        for writer in (client_writer, server_writer):
            writer.close()


async def serve(
    routes: Sequence[Route], delay: float, started: asyncio.Event | None = None
) -> None:
    """Run every route until cancelled; `started` is set once all of them accept."""
    servers = []
    for route in routes:

        async def handle(
            r: asyncio.StreamReader, w: asyncio.StreamWriter, route: Route = route
        ) -> None:
            await _relay(route, delay, r, w)

        servers.append(await asyncio.start_server(handle, route.listen_host, route.listen_port))
    if started is not None:
        started.set()
    try:
        await asyncio.gather(*(s.serve_forever() for s in servers))
    finally:
        for server in servers:
            server.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m emugen.lab.proxy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--delay", type=float, default=0.05, help="seconds added in each direction (default 0.05)"
    )
    parser.add_argument("routes", nargs="+", metavar="LISTEN_HOST:PORT=TARGET_HOST:PORT")
    args = parser.parse_args(argv)
    try:
        routes = [Route.parse(text) for text in args.routes]
    except ValueError as exc:
        parser.error(str(exc))

    async def run() -> None:
        started = asyncio.Event()
        serving = asyncio.create_task(serve(routes, args.delay, started))
        await started.wait()
        for route in routes:
            print(
                f"listening {route.listen_host}:{route.listen_port} -> "
                f"{route.target_host}:{route.target_port} (+{args.delay * 1000:g} ms each way)",
                flush=True,
            )
        await serving

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    sys.exit(0)


if __name__ == "__main__":
    main()
