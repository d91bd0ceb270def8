"""Celery tasks: thin wrappers over the worker's runtime and the pipeline's plain functions.

Each task is registered under its wire name from `names` (not its module path), so a message
queued before a move of this module still finds its task.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import task_revoked

from emugen.fleet import names, worker
from emugen.pipeline import gold, silver


# The retry policy (store-dependent max_retries from the live config, a capped 2**n countdown,
# and a recorded outcome on giving up) does not fit `autoretry_for`, so the runtime owns it.
@shared_task(bind=True, name=names.GENERATE_BATCH, max_retries=None)
def generate_batch(
    self: Any, stream: str, scheduled_at: str, mode: str | None = None
) -> str | None:
    """Land one batch for the tick (idempotent per tick), then chain silver and gold."""
    return worker.generate(self, stream, scheduled_at, mode)


@shared_task(bind=True, name=names.TO_SILVER, max_retries=None)
def to_silver(self: Any, batch_id: str) -> str:
    worker.run_stage(self, "silver", batch_id, silver.run)
    return batch_id


@shared_task(bind=True, name=names.TO_GOLD, max_retries=None)
def to_gold(self: Any, batch_id: str) -> str:
    worker.run_stage(self, "gold", batch_id, gold.run)
    return batch_id


@shared_task(bind=True, name=names.BACKFILL_TICK, max_retries=None)
def backfill_tick(self: Any, tick: dict[str, Any]) -> str | None:
    """Land, refine and build one backfill tick from the full spec its message carries."""
    return worker.backfill(self, tick)


@shared_task(name=names.LAND_BATCH)
def land_batch(batch_id: str) -> bool:
    """Write a bronze batch to the landing zone (a failure is recorded, never raised)."""
    return worker.land(batch_id)


@shared_task(bind=True, name=names.REAP)
def reap(self: Any) -> list[list[str]]:
    """Re-send the next stage of every batch a crash or a lost message left idle."""
    return worker.reap(self.app)


@shared_task(name=names.PRUNE)
def prune() -> str:
    """Delete emulated batches older than fleet.retain_batches_for, a few rows at a time."""
    return worker.prune()


@task_revoked.connect
def _record_expired_tick(
    sender: Any = None, request: Any = None, expired: bool = False, **_: Any
) -> None:
    """Runs in the worker's main process, which discards expired messages before the pool
    sees them: only there can an expired generation tick be recorded as a skip."""
    if expired and getattr(sender, "name", None) == generate_batch.name:
        worker.record_expired_tick(list(getattr(request, "args", None) or ()))
