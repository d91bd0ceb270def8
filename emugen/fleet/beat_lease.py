"""One beat per broker: a short Redis lease that a second `celery beat` refuses to start against.

Two beats would each send every tick a few milliseconds apart, and ticks at distinct moments are
distinct batches, so the fleet would silently generate twice the data. The running beat renews
the lease every tick; a beat that dies stops renewing, and its lease lapses after `TTL_MS`, so a
restarted beat waits out at most that long instead of failing.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from emugen.errors import BeatAlreadyRunning

logger = logging.getLogger("emugen.beat_lease")
KEY = "emugen:beat"
TTL_MS = 5000  # beat ticks at least every second (beat_max_loop_interval), so 5 missed renewals


class LeaseStore(Protocol):
    def set(self, name: str, value: str, *, nx: bool = ..., px: int = ...) -> Any: ...
    def get(self, name: str) -> Any: ...
    def pexpire(self, name: str, time: int) -> Any: ...
    def delete(self, *names: str) -> Any: ...


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class BeatLease:
    """The lease as one beat sees it: acquire at start, renew each tick, release at exit."""

    def __init__(self, store: LeaseStore, broker: str, ttl_ms: int = TTL_MS) -> None:
        self.store = store
        self.broker = broker
        self.ttl_ms = ttl_ms
        started = datetime.now(UTC).isoformat(timespec="seconds")
        # readable, because the refused beat prints it; the suffix tells restarts apart
        self.token = (
            f"{socket.gethostname()} pid {os.getpid()} since {started} [{uuid.uuid4().hex[:8]}]"
        )

    def holder(self) -> str | None:
        return _text(self.store.get(KEY))

    def renew(self) -> bool:
        """Extend our lease (or retake it after the broker lost it); False if another holds it."""
        if self.store.set(KEY, self.token, nx=True, px=self.ttl_ms):
            return True
        if self.holder() == self.token:
            self.store.pexpire(KEY, self.ttl_ms)
            return True
        return False

    def acquire(self, wait_s: float | None = None, poll_s: float = 0.25) -> float:
        """Take the lease, waiting up to one TTL (plus a margin) for a dead beat's to lapse;
        returns the seconds waited."""
        started = time.monotonic()
        deadline = started + (self.ttl_ms / 1000 + 1 if wait_s is None else wait_s)
        while not self.renew():
            if time.monotonic() >= deadline:
                raise BeatAlreadyRunning(
                    f"another emugen beat is already scheduling on {self.broker} "
                    f"({self.holder() or 'its lease just lapsed'}); two beats would send every "
                    "tick twice. Stop that beat first, or give this fleet its own broker "
                    "(broker_url in the config)."
                )
            time.sleep(poll_s)
        return time.monotonic() - started

    def release(self) -> None:
        """Let a successor start at once (only if the lease is still ours)."""
        if self.holder() == self.token:
            self.store.delete(KEY)


def read_lease(client: Any) -> tuple[bool | None, str]:
    """(does a beat hold the lease right now?, what to say): how `emugen status` tells a
    running fleet from a store that a past run or an in-process `pipeline run` filled.

    None when it cannot be told: no Redis broker (`client` is None) or the broker did not answer.
    """
    if client is None:
        return None, "the broker is not Redis, so no beat lease can be read"
    try:
        holder = _text(client.get(KEY))
    except Exception as exc:  # noqa: BLE001 - a status must not fail on a broker outage
        return None, f"the broker did not answer ({str(exc).strip() or type(exc).__name__})"
    if holder is None:
        return False, "no beat holds the lease on the broker"
    return True, f"beat {holder}"
