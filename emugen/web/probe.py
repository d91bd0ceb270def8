"""The broker probe: queue depths (Redis LLEN) and worker liveness (Celery ping), cached."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from emugen.fleet.backpressure import purge_queues, queue_depth
from emugen.fleet.broker import fast_client
from emugen.fleet.due import read as read_due
from emugen.fleet.names import QUEUES
from emugen.fleet.outage import outage

logger = logging.getLogger("emugen.web")
Pinger = Callable[[], dict[str, Any] | None]


def is_redis(url: str) -> bool:
    return urlsplit(url).scheme in ("redis", "rediss")


def redis_client(url: str, timeout: float = 0.5) -> Any:
    """A client that fails fast: a broker that is down must cost the dashboard half a second."""
    return fast_client(url, timeout)


def celery_pinger(url: str, timeout: float) -> Pinger:
    """`app.control.inspect().ping()` on a private Celery app (the worker's app is not loaded)."""
    from celery import Celery

    app = Celery("emugen-web-probe", broker=url, set_as_current=False)
    app.conf.update(
        broker_connection_timeout=timeout,
        broker_connection_retry=False,
        broker_connection_max_retries=0,
        broker_transport_options={"socket_connect_timeout": timeout},
    )

    def ping() -> dict[str, Any] | None:
        return app.control.inspect(timeout=timeout).ping()

    return ping


class BrokerProbe:
    """Refreshes in a daemon thread; `read()` returns the latest result without waiting.

    Queue depths are read every `depth_every` seconds; workers are pinged every `ping_every`
    seconds (a ping always waits its whole timeout for replies, so it is never on a request's
    path). A broker that is down is a result (`ok: false`), never an exception.
    """

    def __init__(
        self,
        url: str,
        *,
        depth_every: float = 1.0,
        ping_every: float = 5.0,
        ping_timeout: float = 0.5,
        client: Any = None,
        pinger: Pinger | None = None,
    ) -> None:
        self.url = url
        self.redis = is_redis(url)
        self.depth_every, self.ping_every, self.ping_timeout = depth_every, ping_every, ping_timeout
        self._client, self._pinger = client, pinger
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_ping = 0.0
        self._state: dict[str, Any] = {
            "broker": {"ok": None, "error": None, "checked_at": None},
            "queues": None,
            "workers": {"ok": None, "alive": [], "checked_at": None, "error": None},
            "store": {"fault": None, "parked_ticks": None},
            "due": None,  # beat's plan (emugen.fleet.due), None while no beat publishes one
        }
        if not self.redis:
            note = f"not a Redis broker ({urlsplit(url).scheme}://): no queue depths or pings"
            self._state["broker"]["error"] = note
            self._state["workers"]["error"] = note
            self._first.set()

    def client(self) -> Any:
        if self._client is None:
            self._client = redis_client(self.url)
        return self._client

    def read(self, wait: float = 0.6) -> dict[str, Any]:
        """The latest reading; the very first call waits up to `wait` s for the first one."""
        if self.redis:
            self._ensure_thread()
            self._first.wait(wait)
        with self._lock:
            return {k: dict(v) if isinstance(v, dict) else v for k, v in self._state.items()}

    def purge(self) -> int | None:
        """Delete every queued message (after a clean); None when there is no Redis to purge."""
        if not self.redis:
            return None
        try:
            count = purge_queues(self.client())
        except Exception as exc:  # noqa: BLE001 - the wipe already succeeded
            logger.warning("broker queues not purged: %s", exc)
            return None
        return count

    def close(self) -> None:
        """Stop the thread (a later `read()` starts a new one)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._stop.clear()

    def refresh(self) -> None:
        """One round: depths always, a ping when it is due and the broker answered."""
        now = datetime.now(UTC).isoformat()
        try:
            client = self.client()
            depths = {q: queue_depth(client, q) for q in QUEUES}
            store = outage(client)  # what writers could not tell the store itself
            due = read_due(client)
            broker = {"ok": True, "error": None, "checked_at": now}
        except Exception as exc:  # noqa: BLE001 - any failure means "the broker is down"
            depths, broker = None, {"ok": False, "error": _short(exc), "checked_at": now}
            store, due = {"fault": None, "parked_ticks": None}, None
        with self._lock:
            self._state["broker"], self._state["queues"] = broker, depths
            self._state["store"], self._state["due"] = store, due
        self._first.set()
        if broker["ok"] and time.monotonic() - self._last_ping >= self.ping_every:
            self._last_ping = time.monotonic()
            self._ping()
        elif not broker["ok"]:
            with self._lock:
                self._state["workers"] = {
                    "ok": None,
                    "alive": [],
                    "checked_at": now,
                    "error": "broker unreachable: cannot ping workers",
                }

    def refresh_due(self) -> None:
        """Re-read beat's plan now (it announced a change), not at the next round."""
        if not self.redis:
            return
        try:
            due = read_due(self.client())
        except Exception:  # noqa: BLE001 - the next round reports the broker's state
            return
        with self._lock:
            self._state["due"] = due

    def _ping(self) -> None:
        try:
            if self._pinger is None:
                self._pinger = celery_pinger(self.url, self.ping_timeout)
            replies = self._pinger() or {}
            workers = {"ok": bool(replies), "alive": sorted(replies), "error": None}
        except Exception as exc:  # noqa: BLE001
            workers = {"ok": None, "alive": [], "error": _short(exc)}
        workers["checked_at"] = datetime.now(UTC).isoformat()
        with self._lock:
            self._state["workers"] = workers

    def _ensure_thread(self) -> None:
        if self._thread is not None or self._stop.is_set():
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="emugen-web-probe", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.depth_every)


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
