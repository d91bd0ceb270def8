"""Batch page benchmark: pages of a 100,000-event batch's records, beside cheap baselines.

One production driver batch goes through bronze, silver and gold; then the dashboard's app
(in process, through FastAPI's TestClient: routing, the queries and the JSON) is asked for its
records. Baselines from the same run and store: a bare `SELECT count(*)` of the batch's bronze
rows, and the dashboard's old /api/batches call. Last, the first page again on version 3's
index (silver by batch_id alone), which the new (batch_id, row_no) index replaced.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, func, select, text

from emugen.db.models import BronzeRecord
from emugen.db.session import engine_for, init_db
from emugen.lab import bench_settings, private_database
from emugen.pipeline.bronze import generate_and_land
from emugen.pipeline.runner import refine_and_build
from emugen.vocabulary import Mode, Stream

_START = datetime(2026, 1, 1, tzinfo=UTC)


def _timed(repeat: int, fn: Callable[[], Any]) -> dict[str, float]:
    """Best and median of `repeat` calls, in ms (the first call warms caches, as a
    developer's second click would find them)."""
    fn()
    laps = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        laps.append((time.perf_counter() - t0) * 1000)
    return {"best_ms": min(laps), "median_ms": statistics.median(laps)}


def _fill(engine: Engine, events: int) -> tuple[str, int]:
    settings = bench_settings()
    init_db(engine)
    companies = generate_and_land(engine, settings, Stream.companies, _START, mode=Mode.production)
    refine_and_build(engine, companies.batch_id)
    landed = generate_and_land(
        engine,
        settings,
        Stream.events,
        _START + timedelta(hours=1),
        mode=Mode.production,
        size=events,
    )
    refine_and_build(engine, landed.batch_id)
    return landed.batch_id, landed.record_count


def bench_batchpage(
    events: int = 100_000, database: str | None = None, repeat: int = 20
) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from emugen.web.app import create_app

    with (
        tempfile.TemporaryDirectory(prefix="emugen-bench-") as folder,
        private_database(database, Path(folder), "batchpage") as url,
    ):
        engine = engine_for(url)
        batch_id, records = _fill(engine, events)
        config = Path(folder) / "emugen.yaml"
        config.write_text(
            yaml.safe_dump(
                {"mode": "production", "database_url": url, "broker_url": "redis://127.0.0.1:1/0"}
            )
        )
        api = f"/api/batches/{batch_id}"
        with TestClient(create_app(config), base_url="http://127.0.0.1") as client:

            def get(path: str, **params: Any) -> Callable[[], Any]:
                def call() -> Any:
                    response = client.get(path, params=params)
                    assert response.status_code == 200, response.text
                    return response.json()

                return call

            def count() -> Any:
                with engine.connect() as conn:
                    return conn.scalar(
                        select(func.count())
                        .select_from(BronzeRecord)
                        .where(BronzeRecord.batch_id == batch_id)
                    )

            last = get(f"{api}/records", size=50)()["pages"]
            problems = get(f"{api}/records", size=50, problems="only")()["pages"]
            figures = {
                "count_bronze": _timed(repeat, count),
                "old_api_batches": _timed(repeat, get("/api/batches", limit=50)),
                "batch": _timed(repeat, get(api)),
                "first_page": _timed(repeat, get(f"{api}/records", page=1, size=50)),
                "deep_page": _timed(repeat, get(f"{api}/records", page=last, size=50)),
                "problems_first": _timed(
                    repeat, get(f"{api}/records", page=1, size=50, problems="only")
                ),
                "problems_deep": _timed(
                    repeat, get(f"{api}/records", page=problems, size=50, problems="only")
                ),
                "gold": _timed(max(3, repeat // 4), get(f"{api}/gold")),
            }
            with engine.begin() as conn:  # version 3's index: silver by batch_id alone
                conn.execute(text("DROP INDEX ix_silver_events_batch_row"))
                conn.execute(
                    text("CREATE INDEX ix_silver_events_batch_id ON silver_events (batch_id)")
                )
                if engine.dialect.name == "postgresql":
                    conn.execute(text("ANALYZE silver_events"))
            figures["first_page_v3_index"] = _timed(
                max(3, repeat // 4), get(f"{api}/records", page=1, size=50)
            )
        dialect = engine.dialect.name
        engine.dispose()
    return {
        "database": dialect,
        "events": records,
        "batch_id": batch_id,
        "repeat": repeat,
        "pages": last,
        "problem_pages": problems,
        **figures,
    }


def format_batchpage(r: dict[str, Any]) -> str:
    def line(label: str, key: str) -> str:
        f = r[key]
        return f"  {label:<44} {f['best_ms']:8.1f} ms best {f['median_ms']:8.1f} ms median"

    return "\n".join(
        [
            f"batch page on {r['database']}: one production batch of {r['events']:,} events "
            f"({r['pages']:,} pages of 50; {r['problem_pages']:,} pages of problems); "
            f"{r['repeat']} calls each after a warm-up",
            "  baselines (same store, same run)",
            line("SELECT count(*) of the batch's bronze rows", "count_bronze"),
            line("GET /api/batches?limit=50 (the old call)", "old_api_batches"),
            "  the batch page's calls",
            line("GET /api/batches/<id>", "batch"),
            line("records page 1 (target <= 300 ms)", "first_page"),
            line(f"records page {r['pages']:,} (the last)", "deep_page"),
            line("records page 1, only problems", "problems_first"),
            line(f"records page {r['problem_pages']:,}, only problems (the last)", "problems_deep"),
            line("GET /api/batches/<id>/gold", "gold"),
            line("records page 1 on version 3's batch_id index", "first_page_v3_index"),
        ]
    )
