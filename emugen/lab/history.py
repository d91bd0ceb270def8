"""History benchmark: the dashboard's history queries on a store of 50,000 batches."""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from sqlalchemy import Engine

END = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # the store's last tick; "now" of every query
TICK_S = 0.5  # both streams at 1 s, interleaved: the busiest cadence the fleet runs at
TEMPLATES = 20  # real batches per stream, landed and refined, that the store is cloned from
CHUNK = 2_000
SKIP_SHARE = 0.01  # one tick in a hundred skipped


@click.command("history")
@click.option(
    "--batches",
    type=click.IntRange(min=1_000),
    default=50_000,
    show_default=True,
    help="How many batches to measure.",
)
@click.option(
    "--database",
    default=None,
    metavar="URL",
    help="A PostgreSQL URL (private schema, dropped after); default: a temporary SQLite file.",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=7,
    show_default=True,
    help="Runs per figure; the best is reported beside every run's.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def history_cmd(batches: int, database: str | None, repeat: int, as_json: bool) -> None:
    """/api/history's 1 h query on N batches at 1 s cadence, beside /api/latency and a count.

    \b
    Example:
      emugen lab bench history --batches 50000
    """
    result = bench_history(batches=batches, database=database, repeat=repeat)
    click.echo(json.dumps(result, indent=2) if as_json else format_history(result))


def _templates(engine: Engine) -> None:
    """Real batches (defects, quarantine rows and all) to clone the big store from."""
    from emugen.pipeline.runner import run_pipeline
    from emugen.settings import parse_settings

    settings = parse_settings(
        {
            "mode": "emulated",
            "seed": 5,
            "landing": {"enabled": False},
            "clock": {"kind": "simulated", "start": "2026-01-01T00:00:00Z"},
        },
        env=False,
    )
    run_pipeline(engine, settings, TEMPLATES)


def _children(session: Any, model: Any) -> dict[str, list[dict[str, Any]]]:
    from sqlalchemy import select

    found: dict[str, list[dict[str, Any]]] = {}
    for row in session.execute(select(model.__table__)).mappings():
        found.setdefault(row["batch_id"], []).append(dict(row))
    return found


def _fill(engine: Engine, batches: int, rng: random.Random) -> dict[str, int]:
    """Clone the templates into `batches` batch rows ending at END, one tick per TICK_S,
    each with its template's truth and quarantine rows, and a skipped tick now and then.

    A clone's excluded_ordinals carries ~2 KB, as a batch row does after an hour at 1 s: the
    width that makes reading whole batch rows costly (models.py).
    """
    from sqlalchemy import insert, select, text

    from emugen.db.models import BatchRow, InjectedDefect, Quarantine, SkippedTick
    from emugen.db.session import read_session, write_session

    with read_session(engine) as session:
        templates = [
            dict(r)
            for r in session.execute(
                select(BatchRow.__table__).order_by(BatchRow.stream, BatchRow.seq)
            ).mappings()
        ]
        truth, quarantine = _children(session, InjectedDefect), _children(session, Quarantine)
    wide = json.dumps(list(range(100_000, 100_400)))
    counts = {"batches": 0, "injected_defects": 0, "quarantine": 0, "skipped_ticks": 0}
    seqs = {"companies": 0, "events": 0}
    for low in range(0, batches, CHUNK):
        rows, defects, rejects, skips = [], [], [], []
        for k in range(low, min(batches, low + CHUNK)):
            template = templates[k % len(templates)]
            stream = template["stream"]
            seqs[stream] += 1
            batch_id = f"{stream}-{seqs[stream] + 10**8:09d}"
            tick = END - timedelta(seconds=(batches - k) * TICK_S)
            latency = timedelta(milliseconds=rng.lognormvariate(4.5, 0.5))
            rows.append(
                {
                    **template,
                    "batch_id": batch_id,
                    "seq": seqs[stream] + 10**8,
                    "scheduled_at": tick,
                    "generated_at": tick + latency / 8,
                    "bronze_at": tick + latency / 4,
                    "silver_at": tick + latency / 2,
                    "gold_at": tick + latency,
                    "excluded_ordinals": wide,
                    "queue_depth": rng.randint(0, 6),
                    "task_id": None,
                    "first_ordinal": 0,
                    "ordinal_count": 0,
                }
            )
            defects += [{**d, "batch_id": batch_id} for d in truth.get(template["batch_id"], [])]
            rejects += [
                {**q, "batch_id": batch_id} for q in quarantine.get(template["batch_id"], [])
            ]
            if rng.random() < SKIP_SHARE:
                skips.append(
                    {
                        "at": tick,
                        "stream": stream,
                        "scheduled_at": tick,
                        "reason": "queue_depth",
                        "detail": "bench",
                    }
                )
        with write_session(engine) as session:
            for model, chunk, name in (
                (BatchRow, rows, "batches"),
                (InjectedDefect, defects, "injected_defects"),
                (Quarantine, rejects, "quarantine"),
                (SkippedTick, skips, "skipped_ticks"),
            ):
                if chunk:
                    session.execute(insert(model), chunk)
                counts[name] += len(chunk)
    if engine.dialect.name == "postgresql":
        # what autovacuum does to a store that grew for hours (and what lets PostgreSQL
        # answer from the covering index alone); these tables only, in the private schema
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(
                text("VACUUM ANALYZE batches, injected_defects, quarantine, skipped_ticks")
            )
    return counts


def _timed(repeat: int, fn: Callable[[], Any]) -> dict[str, float]:
    """Median and best of `repeat` runs, in ms, after one warm-up run."""
    fn()
    ms = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(ms), 2), "best_ms": round(min(ms), 2)}


def bench_history(
    batches: int = 50_000, database: str | None = None, repeat: int = 7, seed: int = 3
) -> dict[str, Any]:
    from sqlalchemy import func, select

    from emugen.db.models import BatchRow
    from emugen.db.session import init_db, read_session
    from emugen.lab.pipeline import bench_engine
    from emugen.status.batches import latency
    from emugen.web.history import CHARTS, Frame, history

    rng = random.Random(seed)
    with bench_engine(database) as engine:
        init_db(engine)
        started = time.perf_counter()
        _templates(engine)
        counts = _fill(engine, batches, rng)
        build_s = time.perf_counter() - started
        with read_session(engine) as session:
            figures = {
                f"history_{w}": _timed(repeat, partial(history, session, w, now=END))
                for w in ("15m", "1h", "24h")
            }
            frame = Frame.of("1h", END)
            charts = {
                name: _timed(repeat, partial(build, session, frame))
                for name, build in CHARTS.items()
            }
            figures["latency_api"] = _timed(repeat, lambda: latency(session))
            figures["count"] = _timed(
                repeat, lambda: session.scalar(select(func.count()).select_from(BatchRow))
            )
            points = {
                name: {s: len(p) for s, p in chart["series"].items()}
                for name, chart in history(session, "1h", now=END)["charts"].items()
            }
    return {
        "database": engine.dialect.name,
        "batches": counts["batches"],
        "rows": counts,
        "build_s": round(build_s, 1),
        "repeat": repeat,
        "figures": figures,
        "charts_1h": charts,
        "points_1h": points,
        "target_ms": 100,
    }


def format_history(r: dict[str, Any]) -> str:
    f = r["figures"]
    lines = [
        f"{r['database']}: {r['batches']:,} batches at 1 s per stream, "
        f"{r['rows']['injected_defects']:,} injected defects, "
        f"{r['rows']['skipped_ticks']:,} skipped ticks (built in {r['build_s']:g} s)",
        f"{'query (ms)':34} {'median':>8} {'best':>8}",
    ]
    names = {
        "history_1h": "/api/history?window=1h (4 charts)",
        "history_15m": "/api/history?window=15m",
        "history_24h": "/api/history?window=24h",
        "latency_api": "baseline: /api/latency (100 batches)",
        "count": "baseline: SELECT count(*) batches",
    }
    for key in ("history_1h", "history_15m", "history_24h", "latency_api", "count"):
        lines.append(f"{names[key]:34} {f[key]['median_ms']:>8.1f} {f[key]['best_ms']:>8.1f}")
    lines.append(
        "1 h, per chart: "
        + ", ".join(f"{name} {c['median_ms']:.1f}" for name, c in r["charts_1h"].items())
    )
    verdict = "under" if f["history_1h"]["median_ms"] < r["target_ms"] else "OVER"
    lines.append(
        f"1 h query: {f['history_1h']['median_ms']:.1f} ms median, {verdict} the "
        f"{r['target_ms']} ms target; "
        f"{f['history_1h']['median_ms'] / f['latency_api']['median_ms']:.1f}x "
        "/api/latency; points per series: "
        + ", ".join(f"{n} {max(p.values())}" for n, p in r["points_1h"].items())
    )
    return "\n".join(lines)
