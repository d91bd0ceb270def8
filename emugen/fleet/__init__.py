"""The fleet's runtime: everything that runs as, or starts, a long-lived process.

Owns the Celery app's wiring (`app`), the task and queue names (`names`), the tasks and the
worker's runtime behind them, beat's scheduler (`schedule`) and its lease, backpressure, the
pause/skip/reload control state, the config watcher (`reload`), what beat plans next (`due`,
`announce`), the broker a local fleet starts, the process supervisor, `emugen up` and
Flower's login.

May import: vocabulary/errors/contract, files, settings, generate, db, sinks, pipeline,
export, grade and backfill. Never status, web, lab or cli (they read or drive the fleet).
"""
