"""`emugen bench` (all): every benchmark in one run, one table, one JSON file.

(a) production throughput (`bench pipeline`), (b) tick -> gold latency and dispatch error on a
real fleet (`bench fleet`), (c) the highest sustainable cadence with 1 and 2 workers
(`bench cadence`), all three on SQLite and, with `--database`, on PostgreSQL too; (d) dashboard
freshness, gold commit -> SSE client (`bench sse`), when this emugen has the dashboard.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from emugen.lab.cadence import STEPS, bench_cadence
from emugen.lab.fleet import bench_fleet
from emugen.lab.pipeline import bench_pipeline

QUICK_STEPS = (0.5, 0.25, 0.1)


def plan(quick: bool) -> dict[str, Any]:
    return {
        "pipeline_events": 20_000 if quick else 100_000,
        "pipeline_repeat": 1 if quick else 3,
        "fleet_seconds": 20 if quick else 60,
        "cadence_steps": QUICK_STEPS if quick else STEPS,
        "cadence_step_seconds": 5 if quick else 10,
        "sse_batches": 30 if quick else 120,
    }


def bench_all(
    quick: bool = False,
    database: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    p = plan(quick)
    started = time.monotonic()
    result: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "plan": {k: list(v) if isinstance(v, tuple) else v for k, v in p.items()},
        "databases": {},
    }
    for target in [None, *([database] if database else [])]:
        name = "sqlite" if target is None else target.split(":", 1)[0].split("+")[0]
        runs: dict[str, Any] = {}
        progress(f"[{name}] (a) pipeline: {p['pipeline_events']:,} events x {p['pipeline_repeat']}")
        runs["pipeline"] = bench_pipeline(p["pipeline_events"], target, p["pipeline_repeat"])
        progress(f"[{name}] (b) fleet latency: {p['fleet_seconds']} s at 1 s")
        runs["fleet"] = bench_fleet(seconds=p["fleet_seconds"], database=target)
        runs["cadence"] = {}
        for workers in (1, 2):
            progress(
                f"[{name}] (c) cadence with {workers} worker(s): "
                f"{p['cadence_step_seconds']} s per step"
            )
            runs["cadence"][str(workers)] = bench_cadence(
                workers, target, step_seconds=p["cadence_step_seconds"], steps=p["cadence_steps"]
            )
        result["databases"][name] = runs
    result["sse"] = _sse(p["sse_batches"], progress)
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


def _sse(batches: int, progress: Callable[[str], None]) -> dict[str, Any]:
    if importlib.util.find_spec("emugen.lab.sse") is None:
        return {"skipped": "emugen.lab.sse is not in this emugen (no dashboard benchmark)"}
    from emugen.lab import sse

    progress(f"(d) dashboard freshness: {batches} batches")
    try:
        return sse.bench_sse(batches=batches)
    except Exception as exc:  # noqa: BLE001 - one failed part must not lose the others
        return {"skipped": f"the SSE benchmark failed: {exc}"}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def table(r: dict[str, Any]) -> str:
    """One row per figure: value, baseline, ratio."""
    rows = [("figure", "value", "baseline (same run)", "ratio")]
    for name, runs in r["databases"].items():
        a, b = runs["pipeline"], runs["fleet"]
        rows.append(
            (
                f"[{name}] (a) {a['events']:,}-event production batch end to end",
                f"{a['total_s']:.2f} s ({a['events_per_s']:,.0f} ev/s)",
                f"sqlite3.executemany floor {a['sqlite_executemany_floor_s']:.2f} s",
                f"{a['total_to_floor_ratio']:.1f}x",
            )
        )
        for pct in (50, 95, 99):
            rows.append(
                (
                    f"[{name}] (b) tick -> gold p{pct} (1 s, 20 records)",
                    _ms(b[f"tick_to_gold_p{pct}_ms"]),
                    f"in-process floor p{pct} {_ms(b[f'floor_p{pct}_ms'])}",
                    f"{b[f'p{pct}_ratio_to_floor']:.1f}x",
                )
            )
        rows.append(
            (
                f"[{name}] (b) dispatch interval error p50 / p99",
                f"{b['dispatch_error_p50_ms']:.1f} / {b['dispatch_error_p99_ms']:.1f} ms",
                "ideal 0 ms (interval 1000 ms)",
                "-",
            )
        )
        for workers, c in runs["cadence"].items():
            best = c["sustainable_interval_s"]
            value = (
                "none"
                if best is None
                else f"every {best:g} s = "
                f"{c['sustainable_batches_per_s']:.1f} batches/s"
                + (" (config minimum)" if c["reached_min_interval"] else "")
            )
            rows.append(
                (
                    f"[{name}] (c) sustainable cadence, {workers} worker(s)",
                    value,
                    f"in-process floor {c['floor_batches_per_s']:.0f} batches/s",
                    f"{c['ratio_to_floor']:.2f}x",
                )
            )
    sse = r["sse"]
    if "skipped" in sse:
        rows.append(("(d) dashboard freshness", "skipped", sse["skipped"], "-"))
    else:
        for p in ("p50", "p95"):
            rows.append(
                (
                    f"(d) gold commit -> SSE client {p}",
                    _ms(sse["sse_ms"][p]),
                    f"polling every {sse['poll_interval_s']:g} s: {_ms(sse['polling_ms'][p])}",
                    f"{sse[f'ratio_{p}']}x faster",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(
        f"(wall {r['wall_s']:.0f} s, {'--quick' if r['quick'] else 'full'} run, "
        f"{r['machine']['cpus']} CPUs, Python {r['machine']['python']})"
    )
    return "\n".join(lines)
