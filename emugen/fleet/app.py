"""The Celery app, wired from the config: `emugen/celery.py` hands it to `celery -A emugen`."""

from __future__ import annotations

import logging

from celery import Celery
from celery.signals import worker_init, worker_process_init

from emugen.errors import ConfigError
from emugen.fleet.flower_login import REQUIRE_LOGIN
from emugen.fleet.names import GENERATE_QUEUE, ROUTES
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
    from emugen.fleet.applied import lenient_urls

    _broker_url = lenient_urls()[0]["broker_url"]
    logging.getLogger("emugen").warning(
        "%s\nstarting anyway on the store's last applied config; fix the file", _problem
    )

app = Celery("emugen", broker=_broker_url, include=["emugen.fleet.tasks"])
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
    task_routes={name: {"queue": queue} for name, queue in ROUTES.items()},
    worker_send_task_events=True,  # Flower
    task_send_sent_event=True,
    beat_max_loop_interval=1,  # config edits and short intervals honoured within a second
    beat_scheduler="emugen.fleet.schedule:EmugenScheduler",
    broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,  # a restarted Redis is waited for, not given up on
    worker_cancel_long_running_tasks_on_connection_loss=True,
    enable_utc=True,
    timezone="UTC",
)


@worker_process_init.connect
def _fresh_runtime(**_: object) -> None:
    from emugen.fleet.worker import setup_process

    setup_process()


@worker_init.connect
def _pin_stores(sender: object = None, **_: object) -> None:
    pool = getattr(sender, "pool_cls", "")
    if "prefork" in (pool if isinstance(pool, str) else getattr(pool, "__module__", "")):
        from emugen.fleet.worker import pin_stores  # a fleet worker, about to fork its pool

        pin_stores()
