"""The dashboard's state: the config file it watches, the store it reads, the broker it probes."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from emugen.db.session import read_session
from emugen.fleet.reload import ConfigWatcher
from emugen.settings import Settings
from emugen.status import health as snap
from emugen.status.arrivals import stream_arrivals
from emugen.status.quality import quality
from emugen.web.history import DEFAULT_WINDOW, HistoryCache, history_key, status_counts
from emugen.web.metrics import Metrics
from emugen.web.probe import BrokerProbe
from emugen.web.stream import Broadcaster
from emugen.web.subscription import Subscriber

QUALITY_MIN_REFRESH_S = 1.0
QUALITY_COST_FACTOR = 20


class WebState:
    """One per app. The database and broker are the ones the config named at start; the
    mode, cadences and reload status are re-read from the file on every snapshot."""

    def __init__(
        self,
        config_path: Path,
        settings: Settings,
        engine: Engine,
        probe: BrokerProbe,
        *,
        token: str | None,
        flower_url: str | None,
        poll_interval: float,
    ) -> None:
        self.config_path, self.settings, self.engine, self.probe = (
            config_path,
            settings,
            engine,
            probe,
        )
        self.token, self.flower_url = token, flower_url
        self.watcher = ConfigWatcher(config_path, running=settings)  # its store never moves
        self._watch_lock = threading.Lock()
        self.metrics = Metrics()
        # the fleet's announcements wake the broadcaster at once; its poll is the fallback
        self.changes = Subscriber(settings.broker_url, self._heard)
        self.broadcaster = Broadcaster(
            self.version,
            self.pushed_snapshot,
            interval=poll_interval,
            pushed=lambda: self.changes.listening,
        )
        self.history = HistoryCache()
        self._history_pushed: str | None = None  # the stamp of the last history pushed
        self._quality: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self._quality_built = 0.0  # time.monotonic() of the last rebuild
        self._quality_cost = 0.0  # seconds the last rebuild took
        self._quality_lock = threading.Lock()
        self._quality_thread: threading.Thread | None = None
        # the arrival counts scan the whole ledger, which changes only when a batch lands (or
        # is pruned or cleaned): read again only when the batch count or newest batch moves
        self._arrivals: tuple[tuple[Any, ...], dict[str, dict[str, int]]] | None = None
        # an outside pipeline graded live when the config names one (`grade:`)
        from emugen.grade.live import ExternalCollector, LiveGrade
        from emugen.grade.live_gold import GoldCollector

        self.external = LiveGrade(self._grade_target, engine)
        self.metrics.registry.register(ExternalCollector(self.external.read))
        self.metrics.registry.register(GoldCollector(self.external.read))

    def _heard(self, kind: str) -> None:
        if kind == "due":  # beat's new plan is in Redis: read it before the snapshot does
            self.probe.refresh_due()
        self.broadcaster.wake()

    def _grade_target(self) -> Any:
        with self._watch_lock:
            current = self.watcher.settings or self.settings
        return current.grade

    def config(self) -> dict[str, Any]:
        with self._watch_lock:
            self.watcher.poll()
            settings, error = self.watcher.settings, self.watcher.last_error
        return snap.config_summary(self.config_path, settings, error)

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.config_path)
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def _probe_key(self, probe: dict[str, Any]) -> tuple[Any, ...]:
        queues, store = probe["queues"], probe.get("store") or {}
        fault = store.get("fault") or {}
        due = probe.get("due") or {}
        return (
            probe["broker"]["ok"],
            tuple(sorted(queues.items())) if queues else None,
            probe["workers"]["ok"],
            tuple(probe["workers"]["alive"]),
            # a full disk changes nothing in the store: the fault itself must push the page
            fault.get("error"),
            fault.get("at"),
            store.get("parked_ticks"),
            # beat's plan without its refresh stamp: a new tick time or interval only
            due.get("mode"),
            repr(due.get("streams")),
        )

    def version(self) -> tuple[Any, ...]:
        with read_session(self.engine) as session:
            store = snap.version(session)
            key = snap.quality_key_of(session, dict(store[0]))
        # The key of the quality report shown, and the key of one due to be built: the latter
        # appears when a held-back report may be rebuilt, so that report is pushed even if the
        # store stays still from then on (a pause right after a batch, say), and only then.
        cached = self._quality
        if cached is None:  # the first snapshot builds the report of this very key
            shown: tuple[Any, Any] = (key, None)
        else:
            stale = cached[0] != key and self._quality_may_refresh()
            shown = (cached[0], key if stale else None)
        # likewise a held-back history; store[:2] is history_key (batches by status, skips)
        history = self.history.shown_key(DEFAULT_WINDOW, store[:2])
        return store, self._file_stamp(), self._probe_key(self.probe.read()), shown, history

    def _quality_may_refresh(self) -> bool:
        """The quality report reconciles the whole store (~30 ms at 5,000 batches, growing), so
        it is rebuilt at most once a second, and never more often than 20 times its own cost:
        its share of a core stays under 5 % however large the store grows."""
        spacing = max(QUALITY_MIN_REFRESH_S, QUALITY_COST_FACTOR * self._quality_cost)
        return time.monotonic() - self._quality_built >= spacing

    def health(self) -> dict[str, Any]:
        with read_session(self.engine) as session:
            return snap.health(session, self.config(), self.probe.read())

    def pushed_snapshot(self) -> dict[str, Any]:
        """The snapshot the stream pushes. A quality report due for a rebuild (the costly part)
        is rebuilt in the background, and its own push follows: a commit's push never waits
        for it (docs/BENCHMARKS.md, push on commit). It carries the history only when that was
        rebuilt since the last push (the bulk of a snapshot); `history_stamp` always tells a
        client whether the history it holds is current (else GET /api/history)."""
        data = self.snapshot(quality_inline=False)
        if data["history_stamp"] == self._history_pushed:
            del data["history"]
        self._history_pushed = data["history_stamp"]
        return data

    def snapshot(self, quality_inline: bool = True) -> dict[str, Any]:
        with read_session(self.engine) as session:
            by_status = status_counts(session)  # read once, for both caches' keys
            key = snap.quality_key_of(session, dict(by_status))
            cached = self._quality
            if cached is None or (cached[0] != key and self._quality_may_refresh()):
                if cached is None or quality_inline:
                    cached = self._rebuild_quality(session, key)
                else:
                    self._rebuild_quality_behind()
            if self._arrivals is None or self._arrivals[0] != (key[0], key[3]):
                self._arrivals = ((key[0], key[3]), stream_arrivals(session))
            data = snap.snapshot(
                session,
                self.config(),
                self.probe.read(),
                quality_report=cached[1],
                arrivals=self._arrivals[1],
            )
            history = self.history.get(session, DEFAULT_WINDOW, history_key(session, by_status))
        return {
            **data,
            "external": self.external.read(),
            "flower_url": self.flower_url,
            "token_required": self.token is not None,
            # whether commits wake this server (subscribed to the fleet's announcements)
            "pushed": self.changes.listening,
            "history": history,
            "history_stamp": history["stamp"],
        }

    def _rebuild_quality(self, session: Any, key: tuple[Any, ...]) -> tuple[Any, ...]:
        started = time.monotonic()
        self._quality = (key, quality(session))
        self._quality_built = time.monotonic()
        self._quality_cost = self._quality_built - started
        return self._quality

    def _rebuild_quality_behind(self) -> None:
        with self._quality_lock:
            if self._quality_thread is not None and self._quality_thread.is_alive():
                return  # one rebuild at a time; it reads the store as it is when it starts
            self._quality_thread = threading.Thread(
                target=self._rebuild_quality_then_push, name="emugen-web-quality", daemon=True
            )
            self._quality_thread.start()

    def _rebuild_quality_then_push(self) -> None:
        try:
            with read_session(self.engine) as session:
                self._rebuild_quality(session, snap.quality_key(session))
        except Exception as exc:  # noqa: BLE001 - the old report stays; the next change retries
            logging.getLogger("emugen.web").warning("quality report not rebuilt: %s", exc)
        self.broadcaster.wake()  # the new report's key is in the version: it is pushed now

    def history_for(self, window: str) -> dict[str, Any]:
        with read_session(self.engine) as session:
            return self.history.get(session, window, history_key(session))

    def unreachable(self, error: Exception) -> dict[str, Any]:
        """Health when the database does not answer: degraded, never a 5xx."""
        probe, config = self.probe.read(), self.config()
        return {
            "status": "degraded",
            "now": datetime.now(UTC).isoformat(),
            "reasons": [f"database unreachable: {str(error).splitlines()[0][:300]}"],
            "config": config,
            "generation_mode": config.get("mode"),
            "queues": probe["queues"],
            "broker": probe["broker"],
            "workers": probe["workers"],
        }
