"""Server-sent events: one snapshot per change, built once and shared by every client."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from emugen.web import POLL_INTERVAL_S

logger = logging.getLogger("emugen.web")
KEEPALIVE_S = 15  # a comment line this often keeps proxies from closing a quiet stream
RETRY_MS = 1000  # EventSource reconnects after this long
IDLE_STOP_S = 10  # with no subscriber for this long the database is no longer polled


@dataclass(frozen=True)
class Event:
    id: str
    data: str  # the snapshot as compact JSON (one line)

    def encode(self) -> bytes:
        return f"id: {self.id}\nevent: snapshot\ndata: {self.data}\n\n".encode()


class Broadcaster:
    """Polls a cheap `version()` every `interval` s; when it changes, builds one snapshot.

    Ids are `<boot>-<n>`: a client reconnecting with the current id (EventSource sends it as
    Last-Event-ID) gets nothing until the next change; any other id gets the current snapshot
    at once, which supersedes every one it missed.
    """

    def __init__(self, version: Callable[[], Hashable], build: Callable[[], dict[str, Any]],
                 interval: float = POLL_INTERVAL_S) -> None:
        self._version, self._build, self.interval = version, build, interval
        self._boot = secrets.token_hex(3)
        self._seq = 0
        self._last_version: Hashable = None
        self.current: Event | None = None
        self.subscribers = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cond: asyncio.Condition | None = None
        self._task: asyncio.Task[None] | None = None

    def _bind(self) -> asyncio.Condition:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._cond is None:  # a new server or test client
            self._loop, self._cond, self._task = loop, asyncio.Condition(), None
        return self._cond

    async def poll(self) -> bool:
        """Publish a new snapshot if the version changed; returns whether it did."""
        cond = self._bind()
        version = await asyncio.to_thread(self._version)
        if version == self._last_version and self.current is not None:
            return False
        data = await asyncio.to_thread(self._build)
        self._seq += 1
        event_id = f"{self._boot}-{self._seq}"
        event = Event(event_id, json.dumps({**data, "id": event_id}, separators=(",", ":")))
        async with cond:
            self._last_version, self.current = version, event
            cond.notify_all()
        return True

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        idle_since: float | None = None
        while True:
            try:
                await self.poll()
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not end the stream
                logger.warning("snapshot poll failed (%s); retrying in 1 s", exc)
                await asyncio.sleep(1)
            if self.subscribers:
                idle_since = None
            else:
                idle_since = idle_since or loop.time()
                if loop.time() - idle_since > IDLE_STOP_S:
                    self._task = None
                    return
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def events(self, last_event_id: str | None,
                     disconnected: Callable[[], Awaitable[bool]]) -> AsyncIterator[bytes]:
        """The byte stream of one client: retry hint, snapshots, keep-alive comments."""
        cond = self._bind()
        self.subscribers += 1
        try:
            if self._task is None:
                self._task = asyncio.create_task(self._run())
            yield f"retry: {RETRY_MS}\n\n".encode()
            sent, quiet = last_event_id, 0
            while True:
                event = await self._next(cond, sent)
                if event is not None:
                    sent, quiet = event.id, 0
                    yield event.encode()
                    continue
                if await disconnected():
                    return
                quiet += 1
                if quiet >= KEEPALIVE_S:
                    quiet = 0
                    yield b": keep-alive\n\n"
        finally:
            self.subscribers -= 1

    async def _next(self, cond: asyncio.Condition, sent: str | None) -> Event | None:
        """The current event once it differs from `sent`; None after a quiet second."""
        async with cond:
            try:
                await asyncio.wait_for(cond.wait_for(
                    lambda: self.current is not None and self.current.id != sent), 1.0)
            except TimeoutError:
                return None
            return self.current
