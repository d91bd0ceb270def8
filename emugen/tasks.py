"""Celery tasks: thin wrappers that call the pipeline's plain functions in their own sessions."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import chain
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import task_revoked
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError

from emugen.applied import fallback
from emugen.backpressure import hold_tick, queue_depth
from emugen.celery import app
from emugen.db import outage
from emugen.db.models import BatchRow
from emugen.db.session import engine_for, init_db, read_session, write_session
from emugen.errors import BatchNotFound, ConfigError, StoreFileGone
from emugen.pipeline.bronze import generate_and_land
from emugen.pipeline.gold import build_gold
from emugen.pipeline.recovery import claim_stuck, mark_failed
from emugen.pipeline.retention import prune as prune_batches
from emugen.pipeline.silver import refine_silver
from emugen.reload import ConfigWatcher
from emugen.settings import Settings
from emugen.sinks.lander import land, reland_missing
from emugen.vocabulary import Mode, Stream

logger = logging.getLogger("emugen.tasks")
_watcher = ConfigWatcher()
_initialised: set[str] = set()
TRANSIENT = (OperationalError,)  # locked/unreachable database: worth a retry
MAX_BACKOFF_S = 20  # below the broker's visibility timeout, so a retry is never re-delivered
PRUNE_BUDGET_S = 10  # one prune run stops after this (well below the soft time limit)
# kombu's Redis transport pops priority 0 (every other message) before 9, across both queues
LAND_PRIORITY = 9


def current_settings() -> Settings:
    """The config in force for this worker: the file's latest valid version."""
    change = _watcher.poll()
    if change is not None and not change.accepted:
        logger.warning("config rejected, keeping the running one: %s", change.error)
    if _watcher.settings is None:
        problem = _watcher.last_error or ConfigError(str(_watcher.path), ["no config loaded"])
        found = fallback(_watcher.path, problem)  # the store's last applied config
        if not found.from_store:
            raise problem
        logger.warning("%s", found.warning())
        _watcher.settings = found.settings  # until the file is fixed: the next valid edit wins
    return _watcher.settings


def _engine(settings: Settings) -> Any:
    engine = engine_for(settings.database_url)
    if settings.database_url not in _initialised:
        init_db(engine)
        _initialised.add(settings.database_url)
    return engine


def pipeline_depth() -> int:
    """LLEN of the pipeline queue (all priorities) on the broker; 0 for non-Redis brokers."""
    # from the app's pool: beat asks on every tick, a fresh connection each time adds up
    with app.pool.acquire(block=True, timeout=5) as connection:
        client = getattr(connection.default_channel, "client", None)
        return queue_depth(client) if client is not None and hasattr(client, "llen") else 0


def backoff(retries: int) -> float:
    return min(2.0 ** retries, MAX_BACKOFF_S)


def stage_chain(batch_id: str, first: str = "silver") -> Any:
    steps = [to_silver.si(batch_id), to_gold.si(batch_id)]
    return chain(*(steps if first == "silver" else steps[1:]))


@app.task(bind=True, name="emugen.generate_batch", max_retries=None)
def generate_batch(self: Any, stream: str, scheduled_at: str,
                   mode: str | None = None) -> str | None:
    """Land one batch for the tick (idempotent per tick), then chain silver and gold."""
    settings = current_settings()
    engine = _engine(settings)
    at = datetime.fromisoformat(scheduled_at)
    try:
        with write_session(engine) as session:
            if hold_tick(session, settings.fleet, pipeline_depth, stream, at,
                         "the fleet was paused before it ran"):
                return None
        landed = generate_and_land(engine, settings, Stream(stream), at,
                                   worker=self.request.hostname,
                                   mode=Mode(mode) if mode else None)
    except StoreFileGone as exc:
        _refused(settings, self.request.hostname, exc)
        raise
    except TRANSIENT as exc:
        _refused(settings, self.request.hostname, exc)
        if self.request.retries >= settings.fleet.max_retries:
            outage.record_or_park(engine, outage.client_for(settings.broker_url),
                                  self.request.hostname, stream, at, "failed",
                                  f"gave up after {self.request.retries} retries: {exc.orig}")
            raise
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from None
    outage.clear_fault(outage.client_for(settings.broker_url))  # it writes again
    stage_chain(landed.batch_id).apply_async()
    if settings.landing.enabled:
        # beside the chain, at the lowest priority: the worker writes the file when no
        # generate/silver/gold message waits, so the landing zone stays off tick -> gold
        land_batch.apply_async((landed.batch_id,), priority=LAND_PRIORITY)
    return landed.batch_id


def _refused(settings: Settings, source: str, exc: BaseException) -> None:
    """Say why the store refused, where the dashboard and `emugen status` read it."""
    outage.report_fault(outage.client_for(settings.broker_url), source, exc)


def _run_stage(task: Any, stage: str, batch_id: str, work: Any) -> None:
    settings = current_settings()
    engine = _engine(settings)
    try:
        with write_session(engine) as session:
            work(session, batch_id)
    except BatchNotFound:
        logger.warning("batch %s is gone (cleaned?); %s dropped", batch_id, stage)
    except (TRANSIENT + (SoftTimeLimitExceeded,)) as exc:
        if isinstance(exc, OperationalError):
            _refused(settings, task.request.hostname, exc)
        if task.request.retries >= settings.fleet.max_retries:
            error = str(getattr(exc, "orig", exc)) or type(exc).__name__
            with write_session(engine) as session:
                mark_failed(session, batch_id, stage, error)
            raise
        raise task.retry(exc=exc, countdown=backoff(task.request.retries)) from None
    except DBAPIError as exc:  # not transient: a bug or a corrupt row; retrying cannot help
        with write_session(engine) as session:
            mark_failed(session, batch_id, stage, str(exc.orig))
        raise


@app.task(bind=True, name="emugen.to_silver", max_retries=None)
def to_silver(self: Any, batch_id: str) -> str:
    _run_stage(self, "silver", batch_id, refine_silver)
    return batch_id


@app.task(bind=True, name="emugen.to_gold", max_retries=None)
def to_gold(self: Any, batch_id: str) -> str:
    _run_stage(self, "gold", batch_id, build_gold)
    return batch_id


@app.task(name="emugen.land_batch")
def land_batch(batch_id: str) -> bool:
    """Write a bronze batch to the landing zone (a failure is recorded, never raised)."""
    settings = current_settings()
    return land(_engine(settings), settings.landing, batch_id) is not None


@app.task(name="emugen.reap")
def reap() -> list[list[str]]:
    """Re-send the next stage of every batch a crash or a lost message left idle."""
    settings = current_settings()
    engine = _engine(settings)
    with write_session(engine) as session:
        claimed = claim_stuck(session, settings.fleet.stuck_after)
    for batch_id, stage in claimed:
        logger.warning("reaper: batch %s idle before %s; re-dispatching", batch_id, stage)
        stage_chain(batch_id, stage).apply_async()
    for batch_id in reland_missing(engine, settings.landing, settings.fleet.stuck_after):
        logger.warning("reaper: batch %s had no landing file; landed it", batch_id)
    return [list(c) for c in claimed]


@app.task(name="emugen.prune")
def prune() -> str:
    """Delete emulated batches older than fleet.retain_batches_for, a few rows at a time."""
    settings = current_settings()
    retain = settings.fleet.retain_batches_for
    if retain is None:
        return "retention is off (fleet.retain_batches_for: null)"
    result = prune_batches(_engine(settings), retain, chunk_rows=settings.fleet.prune_chunk_rows,
                           budget_s=PRUNE_BUDGET_S, landing=settings.landing)
    if result.batches:
        logger.info("retention: %s", result)
    return str(result)


@task_revoked.connect
def _record_expired_tick(sender: Any = None, request: Any = None, expired: bool = False,
                         **_: Any) -> None:
    """A generation tick that expired before a worker took it is a skip, recorded as such,
    so every tick beat sent ends as a batch or a skipped_ticks row (runs in the worker's
    main process, which discards expired messages before the pool sees them)."""
    if not expired or getattr(sender, "name", None) != generate_batch.name:
        return
    args = list(getattr(request, "args", None) or ())
    if len(args) < 2:
        return
    stream, at = str(args[0]), datetime.fromisoformat(str(args[1]))
    try:
        settings = current_settings()
        engine = _engine(settings)
        with read_session(engine) as session:
            landed = session.scalar(select(BatchRow.batch_id).where(
                BatchRow.stream == stream, BatchRow.scheduled_at == at))
        if landed is None:  # a redelivered tick whose batch exists is not a skip
            # a store that refuses the write parks the tick in Redis; beat writes it back
            outage.record_or_park(engine, outage.client_for(settings.broker_url), "worker",
                                  stream, at, "expired",
                                  "the tick waited longer than its interval for a worker")
    except Exception:  # noqa: BLE001 - bookkeeping must never take the worker down
        logger.exception("could not record the expired tick %s %s", stream, at)
