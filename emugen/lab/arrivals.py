"""Arrival-conditions benchmark: generation and the 100k pipeline with the conditions on, beside
the same work with them off, alternated in one run (the machine's drift hits both alike)."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from emugen.db.session import write_session
from emugen.generate import BatchSpec, build_spec, generate
from emugen.lab import bench_settings
from emugen.lab.pipeline import bench_engine, with_companies
from emugen.pipeline import gold, silver
from emugen.pipeline.bronze import Landed, generate_and_land
from emugen.pipeline.runner import refine_and_build
from emugen.settings import Settings
from emugen.vocabulary import Mode, Stream

# the production preset's rates
CONDITIONS: dict[str, Any] = {
    "late": {"rate": 0.02, "max_lateness": "PT1H"},
    "out_of_order": True,
    "redelivered": {"rate": 0.005, "max_age": 3},
    "delayed": {"rate": 0.02, "max_delay": 4},
}
BATCHES = 4  # generation: batches 1..4, so batch 4 copies from the max_age = 3 before it
GENERATION_TARGET, PIPELINE_TARGET = 1.1, 1.2
FIRST_TICK = datetime(2026, 1, 1, 1, tzinfo=UTC)  # an hour after the companies' batch


def with_arrivals(settings: Settings, on: bool) -> Settings:
    """`settings` with the production arrival conditions on, or as they are (all off)."""
    if not on:
        return settings
    arrival = type(settings.events.arrival).model_validate(CONDITIONS)
    events = settings.events.model_copy(update={"arrival": arrival})
    return settings.model_copy(update={"events": events})


def _specs(on: bool, events: int) -> list[BatchSpec]:
    settings = with_arrivals(bench_settings(), on)
    specs: list[BatchSpec] = []
    for seq in range(1, BATCHES + 1):
        specs.append(
            build_spec(
                settings,
                "events",
                seq,
                watermark=2_000,
                size=events,
                mode=Mode.production,
                sources=tuple(specs),
            )
        )
    return specs


def _generation(events: int, repeat: int) -> dict[str, list[float]]:
    """The best wall and CPU seconds of each batch, off and on, over `repeat` alternations
    (CPU time: the process's own, which other processes on a shared machine disturb less)."""
    specs = {False: _specs(False, events), True: _specs(True, events)}
    best = {on: [float("inf")] * BATCHES for on in specs}
    cpu = {on: [float("inf")] * BATCHES for on in specs}
    for round_no in range(repeat):
        for i in range(BATCHES):
            # each batch off and on back to back, which goes first alternating by round
            for on in (False, True) if round_no % 2 == 0 else (True, False):
                started, used = time.perf_counter(), time.process_time()
                batch = generate(specs[on][i])
                best[on][i] = min(best[on][i], time.perf_counter() - started)
                cpu[on][i] = min(cpu[on][i], time.process_time() - used)
                del batch
    return {"off": best[False], "on": best[True], "off_cpu": cpu[False], "on_cpu": cpu[True]}


def _pipeline_run(events: int, on: bool) -> dict[str, float]:
    """A fresh SQLite store: companies and a first events batch settled, then the second
    events batch timed through generate+bronze, silver and gold (each its own transaction)."""
    with (
        bench_engine(None) as engine,
        tempfile.TemporaryDirectory(prefix="emugen-bench-zone-") as zone,
    ):
        settings, _ = with_companies(engine, zone)
        settings = with_arrivals(settings, on)
        refine_and_build(engine, _land(engine, settings, events, 0).batch_id)
        t0, used = time.perf_counter(), time.process_time()
        landed = _land(engine, settings, events, 1)
        t1 = time.perf_counter()
        with write_session(engine) as session:
            silver.run(session, landed.batch_id)
        t2 = time.perf_counter()
        with write_session(engine) as session:
            gold.run(session, landed.batch_id)
        t3, cpu = time.perf_counter(), time.process_time() - used
    return {
        "records": landed.record_count,
        "bronze_s": t1 - t0,
        "silver_s": t2 - t1,
        "gold_s": t3 - t2,
        "total_s": t3 - t0,
        "cpu_s": cpu,
    }


def _land(engine: Engine, settings: Settings, events: int, tick: int) -> Landed:
    """The production events batch of tick `tick` (15 minutes apart), generated into bronze."""
    return generate_and_land(
        engine,
        settings,
        Stream.events,
        FIRST_TICK + timedelta(minutes=15 * tick),
        mode=Mode.production,
        size=events,
    )


def _pipeline(events: int, repeat: int) -> dict[str, dict[str, float]]:
    """The fastest run off and on, alternated `repeat` times."""
    runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    for round_no in range(repeat):
        for name in ("off", "on") if round_no % 2 == 0 else ("on", "off"):
            runs[name].append(_pipeline_run(events, name == "on"))
    best = {name: min(found, key=lambda r: r["total_s"]) for name, found in runs.items()}
    for name, found in runs.items():
        best[name]["best_cpu_s"] = min(r["cpu_s"] for r in found)
    return best


def bench_arrivals(events: int = 100_000, repeat: int = 5, pipeline_repeat: int = 3) -> dict:
    """Generation (batches 1..4, best of `repeat` per batch) and the pipeline (best of
    `pipeline_repeat`), each with the conditions on beside the same with them off."""
    made = _generation(events, repeat)
    piped = _pipeline(events, pipeline_repeat) if pipeline_repeat else None
    result: dict[str, Any] = {
        "events": events,
        "conditions": CONDITIONS,
        "generation": made,
        "generation_off_s": sum(made["off"]) / BATCHES,
        "generation_on_s": sum(made["on"]) / BATCHES,
    }
    result["generation_ratio"] = result["generation_on_s"] / result["generation_off_s"]
    result["generation_cpu_ratio"] = sum(made["on_cpu"]) / sum(made["off_cpu"])
    if piped is not None:
        result["pipeline"] = piped
        result["pipeline_ratio"] = piped["on"]["total_s"] / piped["off"]["total_s"]
        result["pipeline_cpu_ratio"] = piped["on"]["best_cpu_s"] / piped["off"]["best_cpu_s"]
    return result


def _verdict(ratio: float, target: float) -> str:
    return f"{ratio:.2f}x (target <= {target}x: {'met' if ratio <= target else 'NOT met'})"


def format_arrivals(r: dict) -> str:
    made = r["generation"]
    lines = [
        f"arrival conditions on vs off, {r['events']:,} events a batch, alternated in this run",
        "  on: " + ", ".join(f"{k} {v}" for k, v in r["conditions"].items()),
        f"  generation, batches 1..{BATCHES} (best of runs, s each):",
        "    off " + "  ".join(f"{s:.3f}" for s in made["off"]),
        "    on  " + "  ".join(f"{s:.3f}" for s in made["on"]),
        f"    per batch: off {r['generation_off_s']:.3f} s, on {r['generation_on_s']:.3f} s"
        f" -> on/off {_verdict(r['generation_ratio'], GENERATION_TARGET)}",
        f"    CPU time, per batch: off {sum(made['off_cpu']) / BATCHES:.3f} s, "
        f"on {sum(made['on_cpu']) / BATCHES:.3f} s -> on/off {r['generation_cpu_ratio']:.2f}x",
    ]
    piped = r.get("pipeline")
    if piped:
        lines.append("  pipeline, a second events batch, SQLite (best of runs):")
        for name in ("off", "on"):
            p = piped[name]
            lines.append(
                f"    {name:3} {p['records']:,} records: generate+bronze {p['bronze_s']:.3f} s, "
                f"silver {p['silver_s']:.3f} s, gold {p['gold_s']:.3f} s, "
                f"end to end {p['total_s']:.3f} s (CPU {p['best_cpu_s']:.3f} s)"
            )
        lines.append(
            f"    on/off {_verdict(r['pipeline_ratio'], PIPELINE_TARGET)}; "
            f"CPU time on/off {r['pipeline_cpu_ratio']:.2f}x"
        )
    return "\n".join(lines)
