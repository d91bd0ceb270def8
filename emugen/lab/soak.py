"""`emugen soak`: the real fleet for a while, sampled every few seconds; verdict, CSV and SVG.

The fleet is private (redis-server on a free port, N workers, beat, the dashboard when this
emugen has one, a SQLite file in the output folder). Every few seconds the run records each
process's resident memory (a worker's pool processes included), the queue depths, batches in
flight, a sliding-window tick -> gold p50/p95 and the reconciliation. At the end the fleet is
paused and drained, and the criteria in emugen/lab/verdict.py decide the exit code.
"""

from __future__ import annotations

import csv
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from emugen.db.session import write_session
from emugen.errors import FleetStartError
from emugen.fleet.control import set_paused
from emugen.fleet.supervisor import wait_for
from emugen.lab import verdict as v
from emugen.lab.chart import soak_svg
from emugen.lab.processes import PrivateFleet
from emugen.lab.sampler import Sampler, SseClient
from emugen.status.stats import percentile

DRAIN_TIMEOUT_S = 180


class Disturbance(Protocol):
    """Something a chaos run does to the fleet while it is sampled."""

    marks: list[tuple[float, str]]

    def step(self, t: float, fleet: PrivateFleet) -> None: ...

    def finish(self, fleet: PrivateFleet) -> None: ...


@dataclass
class SoakOptions:
    duration: float
    interval: float = 1.0
    workers: int = 1
    out: Path = Path("var/soak")
    size: tuple[int, int] | None = None  # None: the emulated defaults (10 companies, 5-20 events)
    fleet: dict[str, Any] = field(default_factory=dict)  # fleet: settings for the run
    judge_series: bool = True  # chaos runs report RSS and latency but do not judge them
    web: bool = True
    title: str = "soak"
    warmup: float | None = None  # seconds; None: min(max(10 s, 5 intervals), duration/10)
    strict: bool = False  # judge the latency trend without the sampling-noise allowance

    @property
    def sample_every(self) -> float:
        return min(5.0, max(1.0, self.duration / 180))

    @property
    def window_s(self) -> float:
        return min(120.0, max(15.0, self.duration / 20))

    @property
    def warmup_s(self) -> float:
        if self.warmup is not None:
            return self.warmup
        return min(max(10.0, 5 * self.interval), self.duration / 10)


@dataclass
class SoakResult:
    passed: bool
    checks: list[v.Check]
    summary: dict[str, Any]
    out: Path

    def report(self) -> str:
        s = self.summary
        head = (
            f"{s['title']}: {s['duration_s']:g} s at {s['interval_s']:g} s, "
            f"{s['workers']} worker(s), wall {s['wall_s']:.0f} s (drain "
            f"{s['drain_s']:.1f} s); {s['batches']} batches, {s['samples']} samples"
        )
        lines = [head, *(c.line() for c in self.checks)]
        if s.get("load1"):
            lines.append(
                "  load average (1 min) at start / middle / end: "
                + " / ".join("-" if x is None else f"{x:.2f}" for x in s["load1"])
            )
        lines.append(
            f"  tick->gold over the run: p50 {s['p50_ms']:.1f} ms, p95 "
            f"{s['p95_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms; skipped ticks "
            f"{s['skipped_ticks'] or 'none'}"
        )
        for t, label in s["disturbances"]:
            lines.append(f"  {int(t) // 60}:{int(t) % 60:02d}  {label}")
        if s.get("sse_events") is not None:
            lines.append(f"  dashboard: {s['sse_events']} SSE snapshots received by one client")
        lines.append(
            f"  files: {self.out / 'soak.csv'}, {self.out / 'soak.svg'}, "
            f"{self.out / 'verdict.json'}, {self.out / 'latency.csv'} (logs and "
            "soak.db alongside)"
        )
        lines.append(f"VERDICT: {'PASS' if self.passed else 'FAIL'}")
        return "\n".join(lines)


def run_soak(
    opts: SoakOptions,
    disturbance: Disturbance | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> SoakResult:
    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{(out / 'soak.db').resolve()}"
    for stale in ("soak.db", "soak.db-wal", "soak.db-shm"):
        (out / stale).unlink(missing_ok=True)
    started = time.monotonic()
    fleet = PrivateFleet(
        out,
        database_url,
        opts.interval,
        workers=opts.workers,
        size=opts.size,
        fleet=opts.fleet,
        web=opts.web,
    )
    try:
        return _run(opts, fleet, disturbance, progress, started)
    finally:
        fleet.close()


def _run(
    opts: SoakOptions,
    fleet: PrivateFleet,
    disturbance: Disturbance | None,
    progress: Callable[[str], None],
    started: float,
) -> SoakResult:
    fleet.start()
    t0_wall, t0 = datetime.now(UTC), time.monotonic()
    sampler = Sampler(fleet, opts.window_s)
    sse = SseClient(fleet.web_url) if fleet.web_url else None
    if sse is not None:
        sse.start()
    progress(
        f"fleet up in {t0 - started:.1f} s: {', '.join(fleet.roles())}"
        + (f"; dashboard {fleet.web_url}" if fleet.web_url else "; no dashboard command")
    )
    samples: list[dict[str, Any]] = []
    with (opts.out / "soak.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=sampler.columns())
        writer.writeheader()
        next_sample, next_report = 0.0, opts.duration / 10
        while (t := time.monotonic() - t0) < opts.duration:
            if disturbance is not None:
                disturbance.step(t, fleet)
            if t >= next_sample:
                samples.append(sampler.sample(t))
                writer.writerow(samples[-1])
                fh.flush()
                next_sample += opts.sample_every
            if t >= next_report:
                progress(_progress_line(samples[-1]))
                next_report += opts.duration / 10
            time.sleep(0.05)
        if disturbance is not None:
            disturbance.finish(fleet)
        drain_s = _drain(fleet, sampler)
        samples.append(sampler.sample(time.monotonic() - t0))
        writer.writerow(samples[-1])
    fleet.stop_child("beat")
    engine = sampler.engine
    series = v.latencies(engine, t0_wall, sampler.seen)
    in_run = [(t, ms) for t, ms in series if t < opts.duration]
    # every batch's tick -> gold, so the run can be judged again (another warm-up, strict or
    # not) after retention pruned the early batch rows from soak.db
    with (opts.out / "latency.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(
            [("t", "tick_to_gold_ms"), *((round(t, 3), round(ms, 2)) for t, ms in series)]
        )
    checks = [
        *v.batch_checks(engine),
        v.reconciliation_check(engine),
        v.gold_check(engine),
        v.tick_check(engine, fleet.children["beat"].text(), judged=opts.judge_series),
        v.latency_check(
            in_run, opts.duration, opts.warmup_s, judged=opts.judge_series, strict=opts.strict
        ),
        *v.rss_checks(
            [s for s in samples if s["t"] < opts.duration],
            sampler.roles,
            opts.duration,
            judged=opts.judge_series,
        ),
    ]
    if drain_s == float("inf"):
        checks.insert(
            0,
            v.Check(
                "the fleet drained after the run",
                False,
                f"batches still queued or in flight after {DRAIN_TIMEOUT_S} s",
            ),
        )
    lat = [ms for _, ms in in_run]
    summary: dict[str, Any] = {
        "title": opts.title,
        "duration_s": opts.duration,
        "interval_s": opts.interval,
        "workers": opts.workers,
        "fleet": opts.fleet,
        "started": t0_wall.isoformat(),
        "warmup_s": opts.warmup_s,
        "strict": opts.strict,
        "load1": [s.get("load1") for s in (samples[0], samples[len(samples) // 2], samples[-1])],
        "wall_s": round(time.monotonic() - started, 1),
        "drain_s": round(drain_s, 1),
        "batches": len(series),
        "samples": len(samples),
        "p50_ms": statistics.median(lat) if lat else float("nan"),
        "p95_ms": percentile(lat, 95),
        "p99_ms": percentile(lat, 99),
        "skipped_ticks": v.skip_counts(engine),
        "sse_events": sse.events if sse is not None else None,
        "disturbances": disturbance.marks if disturbance is not None else [],
    }
    passed = v.verdict(checks)
    (opts.out / "verdict.json").write_text(
        json.dumps(
            {"passed": passed, "checks": v.as_dicts(checks), "summary": summary},
            indent=2,
            default=str,
        ),
        encoding="utf-8",
    )
    title = (
        f"emugen {opts.title}: {opts.duration:g} s at {opts.interval:g} s, "
        f"{opts.workers} worker(s) — {'PASS' if passed else 'FAIL'}"
    )
    (opts.out / "soak.svg").write_text(
        soak_svg(samples, sampler.roles, title, summary["disturbances"]), encoding="utf-8"
    )
    return SoakResult(passed, checks, summary, opts.out)


def _drain(fleet: PrivateFleet, sampler: Sampler) -> float:
    """Pause (beat keeps running the reaper), then wait until nothing is queued or in flight."""
    started = time.monotonic()
    with write_session(sampler.engine) as session:
        set_paused(session, True)

    def drained() -> bool:
        row = sampler.sample(0)
        return row["in_flight"] == 0 and row["queue_pipeline"] == 0 and row["queue_generate"] == 0

    try:
        wait_for(drained, DRAIN_TIMEOUT_S, "the fleet to drain after the run", every=0.5)
    except FleetStartError:
        return float("inf")  # judged below: batches left in flight are lost batches
    return time.monotonic() - started


def _progress_line(s: dict[str, Any]) -> str:
    rss = "  ".join(
        f"{k[4:-3]} {val:.0f}" for k, val in s.items() if k.startswith("rss_") and val is not None
    )
    p95 = "-" if s["p95_ms"] is None else f"{s['p95_ms']:.0f} ms"
    return (
        f"  {int(s['t']) // 60}:{int(s['t']) % 60:02d}  gold {s['gold']}  in flight "
        f"{s['in_flight']}  queue {s['queue_pipeline']}  p95 {p95}  recon "
        f"{s['caught_pct']:.1f} %  pruned {s['pruned']}  store {s['store_mb']:.0f} MB  "
        f"load {s['load1']:.2f}  RSS MB: {rss}"
    )
