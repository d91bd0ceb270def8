"""Server-sent events: one snapshot per change, built once and shared by every client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from emugen.web import POLL_INTERVAL_S, QUIET_POLL_S
from emugen.web.pacing import Pacer

logger = logging.getLogger("emugen.web")
# A quiet stream carries an `alive` event this often: it keeps proxies from closing the
# connection and tells the page its picture is current (the page counts a stream with neither
# snapshot nor alive for ~2.5 heartbeats as down: dashboard.js STALE_MS).
HEARTBEAT_S = 5
RETRY_MS = 1000  # EventSource reconnects after this long
IDLE_STOP_S = 10  # with no subscriber for this long the database is no longer polled


@dataclass(frozen=True)
class Event:
    id: str
    data: str  # the snapshot as compact JSON (one line)

    def encode(self) -> bytes:
        return f"id: {self.id}\nevent: snapshot\ndata: {self.data}\n\n".encode()


def alive(current: str | None) -> bytes:
    """`alive` names the snapshot id the client has: nothing new since, the stream works.
    No `id:` line, so the browser's Last-Event-ID stays that of the last snapshot."""
    return f"event: alive\ndata: {json.dumps({'id': current})}\n\n".encode()


class Broadcaster:
    """Polls a cheap `version()` every `interval` s; when it changes, builds one snapshot.

    While `pushed()` says the fleet's announcements arrive (emugen.web.subscription), each one
    `wake()`s the poll at once, and the timed poll slows to `quiet_interval` (at least
    QUIET_POLL_S): it only catches what nobody announces (queue depths, workers, a hand edit).

    Ids are `<boot>-<n>`: a client reconnecting with the current id (EventSource sends it as
    Last-Event-ID) gets nothing until the next change; any other id gets the current snapshot
    at once, which supersedes every one it missed.

    When to build is `pacer`'s decision (emugen.web.pacing): a change after a quiet spell is
    built at once, changes during a build make exactly one build right after it, and only
    sustained load is paced.

    Fan-out is one single-slot queue per client, filled by the one polling task. Nothing is
    shared that a client could hold: a shared Condition broke for good ("Lock is not
    acquired") when many waiting clients were cancelled at once (NOTES.md).
    """

    def __init__(
        self,
        version: Callable[[], Hashable],
        build: Callable[[], dict[str, Any]],
        interval: float = POLL_INTERVAL_S,
        *,
        pushed: Callable[[], bool] = lambda: False,
        pacer: Pacer | None = None,
    ) -> None:
        self._version, self._build, self.interval = version, build, interval
        self.quiet_interval = max(interval, QUIET_POLL_S)
        self._pushed = pushed
        self._woken: asyncio.Event | None = None
        self._boot = secrets.token_hex(3)
        self._seq = 0
        self._last_version: Hashable = None
        self.current: Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: set[asyncio.Queue[Event]] = set()
        self._task: asyncio.Task[None] | None = None
        # touched on the event loop's thread only (wake() hops there)
        self.pacer = pacer or Pacer(time.monotonic)

    @property
    def subscribers(self) -> int:
        return len(self._clients)

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new server or test client: the old loop's queues are dead
            self._loop, self._clients, self._task = loop, set(), None
            self._woken = asyncio.Event()

    def wake(self) -> None:
        """Poll now (from any thread): an announcement says the store just changed."""
        loop = self._loop
        if loop is None or self._woken is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in between: nobody to wake
            loop.call_soon_threadsafe(self._woken_here, self._woken)

    def _woken_here(self, woken: asyncio.Event) -> None:
        """On the loop: a wake during a build makes the build after it (the pacer's trailing
        build); one after it, the next build."""
        if woken is self._woken:  # not a wake meant for a loop that has been replaced
            self.pacer.wake()
            woken.set()

    async def _pause(self) -> None:
        """Until the next timed poll or an earlier wake(), then as long as the pacer says."""
        interval = self.quiet_interval if self._pushed() else self.interval
        woken = self._woken
        assert woken is not None
        if not self.pacer.pending:  # else a change came during the build: build again now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), interval)
            self.pacer.wake()  # woken or the timed poll: either way, look at the store
        delay = self.pacer.delay()
        if delay:
            await asyncio.sleep(delay)  # spent its share: the wakes meanwhile make one build

    async def poll(self) -> float | None:
        """Publish a new snapshot if the version changed; returns the CPU seconds that took
        (the pacer's charge), or None when nothing changed."""
        self._bind()
        version, data, spent = await asyncio.to_thread(self._check)
        if data is None:
            return None
        started = time.thread_time()
        self._seq += 1
        event_id = f"{self._boot}-{self._seq}"
        event = Event(event_id, json.dumps({**data, "id": event_id}, separators=(",", ":")))
        self._last_version, self.current = version, event
        for queue in list(self._clients):
            offer(queue, event)
        return spent + time.thread_time() - started

    def _check(self) -> tuple[Hashable, dict[str, Any] | None, float]:
        """In a worker thread: the version, the snapshot if it changed, and the CPU time they
        took. One hop off the event loop, not two: a pushed commit should not queue for a
        thread twice."""
        started = time.thread_time()
        version = self._version()
        if version == self._last_version and self.current is not None:
            return version, None, time.thread_time() - started
        return version, self._build(), time.thread_time() - started

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        idle_since: float | None = None
        while True:
            if self._woken is not None:
                # cleared before the poll: a wake() during the poll means another change
                self._woken.clear()
            self.pacer.start()
            spent = None
            try:
                spent = await self.poll()
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not end the stream
                logger.warning("snapshot poll failed (%s); retrying in 1 s", exc)
                await asyncio.sleep(1)
            finally:
                self.pacer.finish(spent)
            if self._clients:
                idle_since = None
            else:
                idle_since = idle_since or loop.time()
                if loop.time() - idle_since > IDLE_STOP_S:
                    self._task = None
                    return
            await self._pause()

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def events(
        self, last_event_id: str | None, disconnected: Callable[[], Awaitable[bool]]
    ) -> AsyncIterator[bytes]:
        """The byte stream of one client: retry hint, snapshots, `alive` heartbeats."""
        self._bind()
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=1)
        # registered and primed with no await in between, so no snapshot can slip past
        self._clients.add(queue)
        if self.current is not None and self.current.id != last_event_id:
            offer(queue, self.current)
        try:
            self._ensure_running()
            yield f"retry: {RETRY_MS}\n\n".encode()
            sent, quiet = last_event_id, 0
            if queue.empty() and self.current is not None:  # resumed and already current
                yield alive(sent)
            while True:
                try:
                    # cancelling a Queue.get (client gone, server stopping) leaves nothing
                    # behind for anyone else: the queue is this client's own
                    event = await asyncio.wait_for(queue.get(), 1.0)
                except TimeoutError:
                    if await disconnected():
                        return
                    quiet += 1
                    if quiet >= HEARTBEAT_S:
                        quiet = 0
                        self._ensure_running()  # the poller, should it ever have ended
                        yield alive(sent)
                    continue
                if event.id != sent:
                    sent, quiet = event.id, 0
                    yield event.encode()
        finally:
            self._clients.discard(queue)


def offer(queue: asyncio.Queue[Event], event: Event) -> None:
    """Put `event` in a single-slot queue, replacing an unread older one: a slow client skips
    to the latest snapshot (each supersedes the ones before) instead of blocking the poller."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(event)
