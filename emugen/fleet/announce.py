"""Announcements of store changes on the broker (Redis pub/sub), so readers push them at once.

A stage announces its commit after the transaction, never inside it: a reader woken by the
message must find the change committed. An announcement is a hint, never the record: readers
still poll (more slowly) in case one is lost, so a failed publish is logged and forgotten and
never fails the stage that made it.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from emugen.fleet.broker import fast_client

logger = logging.getLogger("emugen.announce")
CHANNEL = "emugen:changes"
# Short: a broker that does not answer must cost a stage at most this once per back-off.
TIMEOUT_S = 0.5
BACKOFF_S = 5.0  # after a failed publish, this process stays quiet for this long
_CLIENTS: dict[tuple[str, int], Any] = {}
_QUIET_UNTIL: dict[tuple[str, int], float] = {}


def is_redis(url: str) -> bool:
    return url.startswith(("redis://", "rediss://", "unix://"))


def _client(url: str) -> Any:
    """One fail-fast client per broker URL per process (a forked pool child gets its own)."""
    key = (url, os.getpid())
    if key not in _CLIENTS:
        _CLIENTS[key] = fast_client(url, timeout=TIMEOUT_S)
    return _CLIENTS[key]


def message(what: str, detail: str = "") -> str:
    """`<what> <detail>`, e.g. `gold events-000012`; readers act on the first word."""
    return f"{what} {detail}".strip()


def kind(payload: bytes | str) -> str:
    """The first word of a received announcement."""
    text = payload.decode(errors="replace") if isinstance(payload, bytes) else payload
    return text.split(" ", 1)[0]


def announce(url: str, what: str, detail: str = "", client: Any = None) -> bool:
    """Publish that the store changed; True if Redis took it. Never raises.

    Other brokers (the in-memory one of eager tests) have no channel: readers poll there.
    """
    if client is None and not is_redis(url):
        return False
    key = (url, os.getpid())
    if time.monotonic() < _QUIET_UNTIL.get(key, 0.0):
        return False
    try:
        (client or _client(url)).publish(CHANNEL, message(what, detail))
    except Exception as exc:  # noqa: BLE001 - a lost hint costs a reader one poll, nothing more
        _QUIET_UNTIL[key] = time.monotonic() + BACKOFF_S
        logger.warning(
            "could not announce %s on the broker (%s); readers fall back to "
            "polling, next try in %g s",
            message(what, detail),
            exc,
            BACKOFF_S,
        )
        return False
    _QUIET_UNTIL.pop(key, None)
    return True
