"""Task and queue names, defined once: what every queued message carries on the wire.

A message already queued by a running fleet names its task by the string here, so these
strings never change with the module layout (tests/test_task_names.py pins them).
"""

from __future__ import annotations

GENERATE_QUEUE = "generate"  # the default queue: generation ticks and backfill ticks
PIPELINE_QUEUE = "pipeline"  # silver, gold, landing and the periodic reaper and retention
QUEUES = (GENERATE_QUEUE, PIPELINE_QUEUE)

GENERATE_BATCH = "emugen.generate_batch"
TO_SILVER = "emugen.to_silver"
TO_GOLD = "emugen.to_gold"
BACKFILL_TICK = "emugen.backfill_tick"
LAND_BATCH = "emugen.land_batch"
REAP = "emugen.reap"
PRUNE = "emugen.prune"

# each task's queue (Celery's task_routes); a plain `celery -A emugen worker` (no -Q) takes
# the default queue, so it still runs generation and backfill ticks
ROUTES = {
    GENERATE_BATCH: GENERATE_QUEUE,
    BACKFILL_TICK: GENERATE_QUEUE,
    TO_SILVER: PIPELINE_QUEUE,
    TO_GOLD: PIPELINE_QUEUE,
    LAND_BATCH: PIPELINE_QUEUE,
    REAP: PIPELINE_QUEUE,
    PRUNE: PIPELINE_QUEUE,
}
STAGE_TASKS = {"silver": TO_SILVER, "gold": TO_GOLD}
