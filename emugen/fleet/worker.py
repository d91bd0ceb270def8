"""The worker's runtime: its config watcher, its engines, and what a failed task does next."""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Any

from celery import chain
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from emugen.db.models import BatchRow
from emugen.db.session import engine_for, forget_engines, init_db, read_session, write_session
from emugen.errors import BackfillNotReady, BatchNotFound, EmugenError, SeqContention, StoreFileGone
from emugen.fleet import outage
from emugen.fleet.announce import announce
from emugen.fleet.applied import record_store
from emugen.fleet.backpressure import hold_tick, pipeline_depth
from emugen.fleet.names import LAND_BATCH, STAGE_TASKS
from emugen.fleet.reload import ConfigWatcher
from emugen.pipeline.bronze import Origin, generate_and_land
from emugen.pipeline.recovery import claim_stuck, mark_failed
from emugen.pipeline.retention import prune as prune_batches
from emugen.pipeline.stage import Stage
from emugen.settings import Settings, config_path
from emugen.sinks.lander import land as land_files
from emugen.sinks.relander import reland_damaged, reland_missing
from emugen.vocabulary import Mode, Stream

logger = logging.getLogger("emugen.tasks")
TRANSIENT = (OperationalError,)  # locked/unreachable database: worth a retry
MAX_BACKOFF_S = 20  # below the broker's visibility timeout, so a retry is never re-delivered
# kombu's Redis transport pops priority 0 (every other message) before 9, across both queues
LAND_PRIORITY = 9
NOT_READY_S = 1  # a backfill event tick waiting for its companies asks again this often
PRUNE_BUDGET_S = 10  # one prune run stops after this (well below the soft time limit)


class Runtime:
    """One per worker process: the config file it watches and the stores it has prepared."""

    def __init__(
        self, config: str | os.PathLike[str] | None = None, running: Settings | None = None
    ) -> None:
        self.watcher = ConfigWatcher(config, running=running)
        self._initialised: set[str] = set()

    def settings(self) -> Settings:
        """The config in force for this worker: the file's latest valid version."""
        return self.watcher.current()

    def engine(self, settings: Settings) -> Engine:
        """The store's engine, its tables created once per URL in this process."""
        engine = engine_for(settings.database_url)
        if settings.database_url not in self._initialised:
            init_db(engine)
            self._initialised.add(settings.database_url)
        return engine


_runtime = Runtime()


def runtime() -> Runtime:
    return _runtime


def configure(
    config: str | os.PathLike[str] | None = None, running: Settings | None = None
) -> Runtime:
    """Put a fresh runtime, watching `config` (default: $EMUGEN_CONFIG), in force."""
    global _runtime
    _runtime = Runtime(config, running)
    return _runtime


def pin_stores() -> None:
    """In the worker's main process, before its pool forks (`worker_init`): read the config
    once and record the stores it names, so every pool process, and one forked later to
    replace a killed one, stays on them whatever the file says by then."""
    try:
        settings = _runtime.settings()
    except EmugenError as exc:  # each pool process says so again at its first task
        logger.error("%s", exc)
        return
    record_store(_runtime.watcher.path, settings, "worker")


def setup_process(config: str | os.PathLike[str] | None = None) -> Runtime:
    """Start a pool process's runtime afresh (from `worker_process_init`).

    A forked child must not share its parent's database connections, nor trust the parent's
    idea of which stores it already prepared; it does keep the parent's config in force (see
    `pin_stores`), which the file may only change by a reload that moves no store.
    """
    forget_engines()
    logging.getLogger("emugen").setLevel(logging.INFO)
    parent = _runtime.watcher
    return configure(
        config, running=parent.settings if parent.path == config_path(config) else None
    )


def backoff(retries: int) -> float:
    return min(2.0**retries, MAX_BACKOFF_S)


def stage_chain(app: Any, batch_id: str, first: str = "silver") -> Any:
    """silver then gold for a batch (or gold alone), sent by task name."""
    stages = list(STAGE_TASKS.values())
    steps = [app.signature(name, (batch_id,), immutable=True) for name in stages]
    return chain(*(steps if first == "silver" else steps[1:]))


def dispatch(app: Any, settings: Settings, batch_id: str) -> None:
    """After landing: the stage chain, and the landing-zone file beside it."""
    stage_chain(app, batch_id).apply_async()
    if settings.landing.enabled:
        # beside the chain, at the lowest priority: the worker writes the file when no
        # generate/silver/gold message waits, so the landing zone stays off tick -> gold
        app.send_task(LAND_BATCH, (batch_id,), priority=LAND_PRIORITY)


def refused(settings: Settings, source: str, exc: BaseException) -> None:
    """Say why the store refused, where the dashboard and `emugen status` read it."""
    outage.report_fault(outage.client_for(settings.broker_url), source, exc)


def generate(task: Any, stream: str, scheduled_at: str, mode: str | None) -> str | None:
    """Land one batch for the tick unless the fleet holds it; retried while the store refuses."""
    settings = _runtime.settings()
    engine = _runtime.engine(settings)
    at = datetime.fromisoformat(scheduled_at)
    depths: list[int] = []  # the gate's own reading, kept as the batch's queue-depth sample

    def depth() -> int:
        depths.append(pipeline_depth(task.app))
        return depths[-1]

    try:
        with write_session(engine) as session:
            held = hold_tick(
                session, settings.fleet, depth, stream, at, "the fleet was paused before it ran"
            )
        if held:
            announce(settings.broker_url, "skip", stream)  # committed: readers may look now
            return None
        origin = Origin(task.request.hostname, task.request.id, depths[-1] if depths else None)
        landed = generate_and_land(
            engine, settings, Stream(stream), at, origin=origin, mode=Mode(mode) if mode else None
        )
    except StoreFileGone as exc:
        refused(settings, task.request.hostname, exc)
        raise
    except TRANSIENT as exc:
        refused(settings, task.request.hostname, exc)
        _give_up_on_tick(task, settings, engine, stream, at, exc)
        raise task.retry(exc=exc, countdown=backoff(task.request.retries)) from None
    except SeqContention as exc:
        # a faster generator kept winning the seq: later, it has moved on (or the tick is
        # recorded as failed), so the tick is a batch or a recorded skip, never neither
        _give_up_on_tick(task, settings, engine, stream, at, exc)
        raise task.retry(exc=exc, countdown=backoff(task.request.retries)) from None
    outage.clear_fault(outage.client_for(settings.broker_url))  # it writes again
    dispatch(task.app, settings, landed.batch_id)
    announce(settings.broker_url, "bronze", landed.batch_id)
    return landed.batch_id


def backfill(task: Any, message: dict[str, Any]) -> str | None:
    """One backfill tick; waits (retries) while its companies are not in silver yet."""
    from emugen.backfill.tick import TickMessage, run_tick

    settings = _runtime.settings()  # only the store's and the landing zone's whereabouts
    tick = TickMessage.parse(message)
    try:
        return run_tick(
            _runtime.engine(settings), settings.landing, tick, worker=task.request.hostname
        )
    except BackfillNotReady:
        raise task.retry(countdown=NOT_READY_S) from None
    except TRANSIENT as exc:
        refused(settings, task.request.hostname, exc)
        if task.request.retries >= settings.fleet.max_retries:
            with write_session(_runtime.engine(settings)) as session:
                mark_failed(session, tick.batch_id, "backfill", str(exc.orig))
            raise
        raise task.retry(exc=exc, countdown=backoff(task.request.retries)) from None


def _give_up_on_tick(
    task: Any,
    settings: Settings,
    engine: Engine,
    stream: str,
    at: datetime,
    exc: OperationalError | SeqContention,
) -> None:
    """Out of retries: the tick is recorded as failed (or parked) and the error re-raised."""
    if task.request.retries < settings.fleet.max_retries:
        return
    reason = exc.orig if isinstance(exc, OperationalError) else exc
    outage.record_or_park(
        engine,
        outage.client_for(settings.broker_url),
        task.request.hostname,
        stream,
        at,
        "failed",
        f"gave up after {task.request.retries} retries: {reason}",
    )
    raise exc


def run_stage(task: Any, stage: str, batch_id: str, work: Stage) -> None:
    """Run one stage in its own transaction: retried while transient, else marked failed."""
    settings = _runtime.settings()
    engine = _runtime.engine(settings)
    try:
        with write_session(engine) as session:
            work(session, batch_id)
    except BatchNotFound:
        logger.warning("batch %s is gone (cleaned?); %s dropped", batch_id, stage)
    except TRANSIENT + (SoftTimeLimitExceeded,) as exc:
        if isinstance(exc, OperationalError):
            refused(settings, task.request.hostname, exc)
        if task.request.retries >= settings.fleet.max_retries:
            error = str(getattr(exc, "orig", exc)) or type(exc).__name__
            with write_session(engine) as session:
                mark_failed(session, batch_id, stage, error)
            announce(settings.broker_url, "failed", batch_id)
            raise
        raise task.retry(exc=exc, countdown=backoff(task.request.retries)) from None
    except DBAPIError as exc:  # not transient: a bug or a corrupt row; retrying cannot help
        with write_session(engine) as session:
            mark_failed(session, batch_id, stage, str(exc.orig))
        announce(settings.broker_url, "failed", batch_id)
        raise
    else:
        # after the commit, never inside it: whoever the message wakes must see the change
        announce(settings.broker_url, stage, batch_id)


def land(batch_id: str) -> bool:
    """Write a bronze batch to the landing zone; False when that failed (it is recorded)."""
    settings = _runtime.settings()
    return land_files(_runtime.engine(settings), settings.landing, batch_id) is not None


def reap(app: Any) -> list[list[str]]:
    """Re-send the next stage of every batch a crash or a lost message left idle, land every
    batch that has no landing file yet, and land again those whose files were damaged."""
    settings = _runtime.settings()
    engine = _runtime.engine(settings)
    with write_session(engine) as session:
        claimed = claim_stuck(session, settings.fleet.stuck_after)
    for batch_id, stage in claimed:
        logger.warning("reaper: batch %s idle before %s; re-dispatching", batch_id, stage)
        stage_chain(app, batch_id, stage).apply_async()
    for batch_id in reland_missing(engine, settings.landing, settings.fleet.stuck_after):
        logger.warning("reaper: batch %s had no landing file; landed it", batch_id)
    for batch_id in reland_damaged(engine, settings.landing):
        logger.warning(
            "reaper: batch %s had a missing or damaged file or manifest; landed it again", batch_id
        )
    return [list(c) for c in claimed]


def prune() -> str:
    """Run retention once within its time budget, or say that it is off."""
    settings = _runtime.settings()
    retain = settings.fleet.retain_batches_for
    if retain is None:
        return "retention is off (fleet.retain_batches_for: null)"
    result = prune_batches(
        _runtime.engine(settings),
        retain,
        chunk_rows=settings.fleet.prune_chunk_rows,
        budget_s=PRUNE_BUDGET_S,
        landing=settings.landing,
    )
    if result.batches:
        logger.info("retention: %s", result)
        announce(settings.broker_url, "prune")
    return str(result)


def record_expired_tick(args: list[Any]) -> None:
    """A generation tick that expired before a worker took it is a skip, recorded as such,
    so every tick beat sent ends as a batch or a skipped_ticks row."""
    if len(args) < 2:
        return
    stream, at = str(args[0]), datetime.fromisoformat(str(args[1]))
    try:
        settings = _runtime.settings()
        engine = _runtime.engine(settings)
        with read_session(engine) as session:
            landed = session.scalar(
                select(BatchRow.batch_id).where(
                    BatchRow.stream == stream, BatchRow.scheduled_at == at
                )
            )
        if landed is None:  # a redelivered tick whose batch exists is not a skip
            # a store that refuses the write parks the tick in Redis; beat writes it back
            outage.record_or_park(
                engine,
                outage.client_for(settings.broker_url),
                "worker",
                stream,
                at,
                "expired",
                "the tick waited longer than its interval for a worker",
            )
            announce(settings.broker_url, "skip", stream)
    except Exception:  # noqa: BLE001 - bookkeeping must never take the worker down
        logger.exception("could not record the expired tick %s %s", stream, at)
