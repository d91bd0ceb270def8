"""Celery tasks: thin wrappers over the worker's runtime and the pipeline's plain functions."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import task_revoked

from emugen import worker
from emugen.db.session import write_session
from emugen.pipeline import gold, silver
from emugen.pipeline.recovery import claim_stuck
from emugen.pipeline.retention import prune as prune_batches
from emugen.sinks.lander import land, reland_missing

logger = logging.getLogger("emugen.tasks")
PRUNE_BUDGET_S = 10  # one prune run stops after this (well below the soft time limit)


# The retry policy (store-dependent max_retries from the live config, a capped 2**n countdown,
# and a recorded outcome on giving up) does not fit `autoretry_for`, so the runtime owns it.
@shared_task(bind=True, name="emugen.generate_batch", max_retries=None)
def generate_batch(self: Any, stream: str, scheduled_at: str,
                   mode: str | None = None) -> str | None:
    """Land one batch for the tick (idempotent per tick), then chain silver and gold."""
    return worker.generate(self, stream, scheduled_at, mode)


@shared_task(bind=True, name="emugen.to_silver", max_retries=None)
def to_silver(self: Any, batch_id: str) -> str:
    worker.run_stage(self, "silver", batch_id, silver.run)
    return batch_id


@shared_task(bind=True, name="emugen.to_gold", max_retries=None)
def to_gold(self: Any, batch_id: str) -> str:
    worker.run_stage(self, "gold", batch_id, gold.run)
    return batch_id


@shared_task(name="emugen.land_batch")
def land_batch(batch_id: str) -> bool:
    """Write a bronze batch to the landing zone (a failure is recorded, never raised)."""
    runtime = worker.runtime()
    settings = runtime.settings()
    return land(runtime.engine(settings), settings.landing, batch_id) is not None


@shared_task(bind=True, name="emugen.reap")
def reap(self: Any) -> list[list[str]]:
    """Re-send the next stage of every batch a crash or a lost message left idle."""
    runtime = worker.runtime()
    settings = runtime.settings()
    engine = runtime.engine(settings)
    with write_session(engine) as session:
        claimed = claim_stuck(session, settings.fleet.stuck_after)
    for batch_id, stage in claimed:
        logger.warning("reaper: batch %s idle before %s; re-dispatching", batch_id, stage)
        worker.stage_chain(self.app, batch_id, stage).apply_async()
    for batch_id in reland_missing(engine, settings.landing, settings.fleet.stuck_after):
        logger.warning("reaper: batch %s had no landing file; landed it", batch_id)
    return [list(c) for c in claimed]


@shared_task(name="emugen.prune")
def prune() -> str:
    """Delete emulated batches older than fleet.retain_batches_for, a few rows at a time."""
    runtime = worker.runtime()
    settings = runtime.settings()
    retain = settings.fleet.retain_batches_for
    if retain is None:
        return "retention is off (fleet.retain_batches_for: null)"
    result = prune_batches(runtime.engine(settings), retain,
                           chunk_rows=settings.fleet.prune_chunk_rows,
                           budget_s=PRUNE_BUDGET_S, landing=settings.landing)
    if result.batches:
        logger.info("retention: %s", result)
    return str(result)


@task_revoked.connect
def _record_expired_tick(sender: Any = None, request: Any = None, expired: bool = False,
                         **_: Any) -> None:
    """Runs in the worker's main process, which discards expired messages before the pool
    sees them: only there can an expired generation tick be recorded as a skip."""
    if expired and getattr(sender, "name", None) == generate_batch.name:
        worker.record_expired_tick(list(getattr(request, "args", None) or ()))
