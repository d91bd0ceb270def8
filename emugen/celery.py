"""The Celery app: `celery -A emugen worker|beat|flower` find it here; settings from the config."""

from __future__ import annotations

import logging

from celery import Celery
from celery.signals import worker_init, worker_process_init

from emugen.backpressure import GENERATE_QUEUE, PIPELINE_QUEUE
from emugen.errors import ConfigError
from emugen.flower_login import REQUIRE_LOGIN
from emugen.settings import load_settings

# A killed worker's unacked message returns after this long (kombu restores it), so it must
# exceed the longest task plus any retry countdown, yet keep a crash's delay under a minute.
VISIBILITY_TIMEOUT_S = 30
SOFT_TIME_LIMIT_S = 60  # a 100k-event production batch takes ~3 s; 20x headroom
HARD_TIME_LIMIT_S = 90

try:
    _broker_url = load_settings().broker_url
except ConfigError as _problem:
    # A typo in the file must not keep workers down: the broker URL is found as the store's
    # is (env, the file's own line, the default) and tasks run on the last applied config.
    from emugen.applied import lenient_urls

    _broker_url = lenient_urls()[0]["broker_url"]
    logging.getLogger("emugen").warning(
        "%s\nstarting anyway on the store's last applied config; fix the file", _problem)

app = Celery("emugen", broker=_broker_url, include=["emugen.tasks"])
app.user_options["preload"].add(REQUIRE_LOGIN)  # `celery -A emugen flower` needs a login
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_ignore_result=True,  # chains need no result backend; the database holds the outcome
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_soft_time_limit=SOFT_TIME_LIMIT_S,
    task_time_limit=HARD_TIME_LIMIT_S,
    task_default_queue=GENERATE_QUEUE,
    task_routes={
        "emugen.generate_batch": {"queue": GENERATE_QUEUE},
        # the default queue: a plain `celery -A emugen worker` (no -Q) takes backfill ticks
        "emugen.backfill_tick": {"queue": GENERATE_QUEUE},
        "emugen.to_silver": {"queue": PIPELINE_QUEUE},
        "emugen.to_gold": {"queue": PIPELINE_QUEUE},
        "emugen.land_batch": {"queue": PIPELINE_QUEUE},
        "emugen.reap": {"queue": PIPELINE_QUEUE},
        "emugen.prune": {"queue": PIPELINE_QUEUE},
    },
    worker_send_task_events=True,  # Flower
    task_send_sent_event=True,
    beat_max_loop_interval=1,  # config edits and short intervals honoured within a second
    beat_scheduler="emugen.schedule:EmugenScheduler",
    broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,  # a restarted Redis is waited for, not given up on
    worker_cancel_long_running_tasks_on_connection_loss=True,
    enable_utc=True,
    timezone="UTC",
)


@worker_process_init.connect
def _fresh_runtime(**_: object) -> None:
    from emugen.worker import setup_process

    setup_process()


@worker_init.connect
def _pin_stores(sender: object = None, **_: object) -> None:
    pool = getattr(sender, "pool_cls", "")
    if "prefork" in (pool if isinstance(pool, str) else getattr(pool, "__module__", "")):
        from emugen.worker import pin_stores  # a fleet worker, about to fork its pool

        pin_stores()
