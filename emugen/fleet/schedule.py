"""Beat's scheduler: entries built from the config in force, re-read every tick (hot reload)."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any, NoReturn

from celery.beat import Scheduler
from sqlalchemy.exc import SQLAlchemyError

from emugen.db import storefile
from emugen.db.session import engine_for, init_db, read_session, write_session
from emugen.errors import BeatAlreadyRunning, StoreFileGone
from emugen.fleet import outage, signals
from emugen.fleet.announce import announce
from emugen.fleet.applied import record_applied, record_store
from emugen.fleet.backpressure import CompaniesFirst, pipeline_depth, tick_hold
from emugen.fleet.beat_lease import BeatLease
from emugen.fleet.broker import fast_client, redact_url
from emugen.fleet.control import record_reload, record_skip
from emugen.fleet.due import DuePublisher, plan, publisher_for
from emugen.fleet.entries import entries_for, tick_time
from emugen.fleet.names import GENERATE_BATCH, REAP
from emugen.fleet.reload import Change, ConfigWatcher
from emugen.settings import Settings
from emugen.vocabulary import Stream

logger = logging.getLogger("emugen.schedule")


class EmugenScheduler(Scheduler):
    """Celery's in-memory scheduler, fed by the config file and gated by pause/backpressure."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.watcher = ConfigWatcher()
        self.settings: Settings | None = None
        self._last_tick: dict[str, datetime] = {}
        self.lease: BeatLease | None = None
        self._renewed = 0.0
        self._store_watched = 0.0
        self.due: DuePublisher | None = None
        self.companies_first = CompaniesFirst()  # on a fresh store: companies, then events
        super().__init__(*args, **kwargs)

    # -- configuration -----------------------------------------------------------------------
    def setup_schedule(self) -> None:
        change = self.watcher.poll()
        assert change is not None  # the first poll always reports
        if not change.accepted:
            # A typo must not keep beat down while the fleet carries on: start on the store's
            # last applied config (as workers do), or stop if there is none to go on.
            assert change.error is not None
            found = self.watcher.fall_back(change.error)
            self._take_lease()
            self._apply(Change(change.source, found.settings, None), record=False)
            self._apply(change)
            return
        self._take_lease()
        self._apply(change)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        self.companies_first.start(self)
        self._renew_lease()
        self._watch_store()
        change = self.watcher.poll()
        if change is not None:
            self._apply(change)
        wait = super().tick(*args, **kwargs)
        self._publish_due()  # after the tick: a send or a reload has just moved the plan
        return wait

    def _publish_due(self) -> None:
        if self.settings is not None:
            self.due = publisher_for(self.due, self.settings.broker_url)
            if self.due is not None:  # None: no Redis, nobody to tell
                self.due.publish(plan(self.schedule, self.settings.mode.value))

    def close(self) -> None:
        if self.due is not None:
            self.due.withdraw()
        if self.lease is not None:
            try:
                self.lease.release()
            except Exception:  # noqa: BLE001 - the lease lapses by itself anyway
                logger.warning(
                    "could not release the beat lease; it lapses in %d ms", self.lease.ttl_ms
                )
        super().close()

    # -- one beat per broker ---------------------------------------------------------------
    def _take_lease(self) -> None:
        url = str(self.app.conf.broker_url or "")
        if not url.startswith(("redis://", "rediss://")):
            return  # eager tests and other transports: nothing to share a schedule through
        # fails fast: an outage is retried on the next tick, never waited out inside one
        self.lease = BeatLease(fast_client(url, timeout=2), redact_url(url))
        try:
            waited = self.lease.acquire()
        except BeatAlreadyRunning as exc:
            logger.critical("%s", exc)
            raise
        except Exception as exc:  # noqa: BLE001 - beat waits for its broker anyway
            logger.warning(
                "broker unreachable, so no check for another beat yet (%s); the "
                "lease is taken on the first tick it answers",
                exc,
            )
            return
        self._renewed = time.monotonic()
        logger.info(
            "beat lease taken on %s after waiting %.1f s: %s",
            self.lease.broker,
            waited,
            self.lease.token,
        )

    def _renew_lease(self) -> None:
        if self.lease is None or time.monotonic() - self._renewed < 1:
            return
        try:
            ours = self.lease.renew()
        except Exception as exc:  # noqa: BLE001 - a broker outage is not a second beat
            logger.warning("could not renew the beat lease: %s", exc)
            return
        self._renewed = time.monotonic()
        if not ours:
            self.due = None  # the plan in Redis is the other beat's now: never withdraw it
            problem = BeatAlreadyRunning(
                f"another beat took the schedule on {self.lease.broker} "
                f"({self.lease.holder()}); this beat stops so ticks are not sent twice"
            )
            logger.critical("%s", problem)
            raise problem

    # -- the store -------------------------------------------------------------------------
    def _watch_store(self) -> None:
        """Once a second: stop if the SQLite file was deleted under us (every later tick
        would land in a ghost), and write back the ticks a refusing store made workers park."""
        settings = self.settings
        if settings is None or time.monotonic() - self._store_watched < 1:
            return
        self._store_watched = time.monotonic()
        engine = engine_for(settings.database_url)
        client = outage.client_for(settings.broker_url)
        try:
            storefile.check(engine)
        except StoreFileGone as exc:
            self._stop_for(exc)
        try:
            outage.drain(engine, client, "beat")
        except Exception as exc:  # noqa: BLE001 - Redis down: the ticks wait there for later
            logger.warning("parked ticks not written back yet: %s", exc)

    def _stop_for(self, exc: StoreFileGone) -> NoReturn:
        assert self.settings is not None
        logger.critical("beat stops: %s", exc)
        outage.report_fault(outage.client_for(self.settings.broker_url), "beat", exc)
        raise exc

    def _apply(self, change: Change, record: bool = True) -> None:
        settings = change.settings or self.settings
        if settings is None:
            return
        engine = engine_for(settings.database_url)
        if self.settings is None or self.settings.database_url != settings.database_url:
            init_db(engine)
        if record:  # a start on the store's last applied config is not a new reload
            self._record(engine, change, settings)
        if not change.accepted:
            logger.error("config rejected; the running config stays in force:\n%s", change.error)
            return
        if self.settings is None:  # the stores beat starts on (reloads never move them)
            record_store(self.watcher.path, settings, "beat")
        self.settings = settings
        self.merge_inplace(entries_for(settings))
        self._heap = None  # re-plan every due time now: a new interval applies at once
        logger.info(
            "config applied: mode=%s fingerprint=%s companies every %s, events every %s",
            settings.mode.value,
            settings.fingerprint(),
            settings.interval(Stream.companies),
            settings.interval(Stream.events),
        )

    def _record(self, engine: Any, change: Change, settings: Settings) -> None:
        with write_session(engine) as session:
            if change.accepted:
                record_reload(
                    session,
                    change.source,
                    fingerprint=settings.fingerprint(),
                    mode=settings.mode.value,
                )
                record_applied(session, settings)
            else:
                assert change.error is not None
                record_reload(session, change.source, problems=change.error.problems)
        announce(settings.broker_url, "reload")

    # -- dispatch --------------------------------------------------------------------------
    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        if entry.task == REAP and self.settings is not None and self._pipeline_full():
            return None
        if entry.task != GENERATE_BATCH or self.settings is None:
            return super().apply_entry(entry, producer=producer)
        stream = entry.args[0]
        at = tick_time()
        previous = self._last_tick.get(stream)
        if previous is not None and at <= previous:
            at = previous + timedelta(milliseconds=1)  # tick keys never repeat
        self._last_tick[stream] = at
        try:
            skipped = self._gate(stream, at)
        except StoreFileGone as exc:
            self._stop_for(exc)
        except Exception as exc:  # noqa: BLE001 - a database hiccup must not stop beat
            logger.exception("backpressure check failed; sending the tick anyway")
            if isinstance(exc, SQLAlchemyError):
                outage.report_fault(outage.client_for(self.settings.broker_url), "beat", exc)
            skipped = False
        if skipped:
            return None
        if stream == Stream.events.value and self.companies_first.hold(self, entry.name):
            return None  # held (after the gate), not skipped: no seq used, no skip recorded
        entry.args = (stream, at.isoformat())
        with signals.stop_deferred():  # a tick logged as sent is sent, even when beat is stopping
            logger.info(  # Celery's own wording: log readers and the soak count ticks by it
                "Scheduler: Sending due task %s (%s) for %s", entry.name, entry.task, at.isoformat()
            )
            try:
                self.apply_async(entry, producer=producer, advance=False)
            except Exception as exc:  # noqa: BLE001 - e.g. Redis down: the tick is lost, say so
                logger.error("tick not sent: %s %s: %s", stream, at.isoformat(), exc)
                self._record_unsent(stream, at, exc)
            finally:
                entry.args = (stream,)
        return None

    def _record_unsent(self, stream: str, at: datetime, exc: Exception) -> None:
        settings = self.settings
        assert settings is not None
        try:
            with write_session(engine_for(settings.database_url)) as session:
                record_skip(session, stream, at, "broker_down", f"could not send the tick: {exc}")
        except Exception:  # noqa: BLE001 - beat keeps ticking whatever the database says
            logger.exception("could not record the unsent tick either")

    def _pipeline_full(self) -> bool:
        """The reaper's message goes to the pipeline queue too. Over the depth limit it would
        only add to the backlog (unconsumed reap ticks pile up past the limit), and a batch
        queued behind that backlog is not lost: the next reap tick comes once it drains."""
        settings = self.settings
        assert settings is not None
        try:
            depth = pipeline_depth(self.app)
        except Exception:  # noqa: BLE001 - a broker hiccup must not stop recovery
            logger.exception("pipeline depth unknown; sending the reap tick anyway")
            return False
        if depth < settings.fleet.max_queue_depth:
            return False
        logger.info(
            "reap tick held back: the pipeline queue holds %d messages (limit %d)",
            depth,
            settings.fleet.max_queue_depth,
        )
        return True

    def _gate(self, stream: str, at: datetime) -> bool:
        settings = self.settings
        assert settings is not None
        engine = engine_for(settings.database_url)
        with read_session(engine) as session:
            skip = tick_hold(
                session, settings.fleet, lambda: pipeline_depth(self.app), "the fleet is paused"
            )
        if skip is not None:
            # a store that refuses the write (disk full) parks the skip in Redis for later
            outage.record_or_park(
                engine,
                outage.client_for(settings.broker_url),
                "beat",
                stream,
                at,
                skip.reason,
                skip.detail,
            )
            announce(settings.broker_url, "skip", stream)
        if skip is not None and skip.reason != "paused":
            logger.warning("tick skipped: %s %s", stream, skip.detail)
        return skip is not None
