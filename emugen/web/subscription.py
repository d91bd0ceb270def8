"""The dashboard's subscription to the fleet's announcements (fleet.announce) on the broker."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from emugen.fleet.announce import CHANNEL, is_redis, kind

logger = logging.getLogger("emugen.web")
RETRY_S = 1.0  # a lost subscription is retried this often (meanwhile the server polls fast)
HEALTH_S = 5.0  # an idle subscription pings this often, so a dead broker is noticed
SOCKET_TIMEOUT_S = 5.0


def subscribe(url: str) -> Any:
    """A pub/sub handle on `CHANNEL`, connected, with no automatic retries: a failure must
    reach the loop below, which says so and marks the subscription down."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=1,
        socket_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=HEALTH_S,
        retry=Retry(NoBackoff(), 0),
    )
    pubsub = client.pubsub()
    pubsub.subscribe(CHANNEL)
    return pubsub


class Subscriber:
    """A daemon thread that calls `heard(kind)` for each announcement (`gold`, `due`, ...).

    `listening` is True while the subscription stands. When it is lost, `heard("subscribed")`
    follows its return, since announcements made meanwhile were missed.
    """

    def __init__(
        self,
        url: str,
        heard: Callable[[str], None],
        connect: Callable[[str], Any] = subscribe,
        retry_s: float = RETRY_S,
    ) -> None:
        self.url, self.heard, self._connect, self.retry_s = url, heard, connect, retry_s
        self.listening = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not is_redis(self.url) or (self._thread is not None and self._thread.is_alive()):
            return  # another broker (eager tests): no channel, the server polls
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="emugen-web-changes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.listening = False

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            pubsub = None
            try:
                pubsub = self._connect(self.url)
                self._listen(pubsub)
            except Exception as exc:  # noqa: BLE001 - any failure: poll fast, retry soon
                if self.listening or failures == 0:
                    logger.warning(
                        "not subscribed to the fleet's announcements (%s); polling "
                        "the store fast until the broker answers",
                        exc,
                    )
                failures += 1
            finally:
                self.listening = False
                if pubsub is not None:
                    _close(pubsub)
            self._stop.wait(self.retry_s)

    def _listen(self, pubsub: Any) -> None:
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            if message["type"] == "subscribe":
                self.listening = True
                logger.info("subscribed to the fleet's announcements on %s", CHANNEL)
                self.heard("subscribed")
            elif message["type"] == "message":
                self.heard(kind(message["data"]))


def _close(pubsub: Any) -> None:
    with contextlib.suppress(Exception):  # closing a dead connection may fail too
        pubsub.close()
        pubsub.connection_pool.disconnect()
