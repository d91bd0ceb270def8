"""Backfill benchmark: a simulated week at ~2,000 drivers on 1 and 2 workers vs in-process.

The fleet is real (a private redis-server, `celery -A emugen worker -c 1` processes, the
`emugen backfill` command as a subprocess); the baseline is the same ticks run live in
order in this process (generate, land, silver, gold per tick, as `emugen pipeline run`).
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from emugen.backfill.plan import Plan, plan_backfill
from emugen.backfill.tick import TickMessage, run_tick
from emugen.db.models import BatchRow
from emugen.db.session import dispose_engines, init_db, make_engine, read_session
from emugen.fleet.reload import write_yaml_atomically
from emugen.fleet.supervisor import spawn
from emugen.lab import private_database
from emugen.lab.processes import PrivateFleet
from emugen.lab.procfs import busy_share, cpu_seconds, machine_jiffies
from emugen.settings import parse_settings
from emugen.vocabulary import Stream

CLOCK_START = datetime(2026, 1, 1, tzinfo=UTC)
# One company batch a week (the longest interval allowed): every event tick of the week after
# it sees the same companies, so the fleet's driver count stays put at about 2,000.
COMPANIES = 109  # ~18 active drivers each (3..40, 95 % active): ~2,000 active drivers
WEEK = timedelta(days=7)


def week_config(
    database_url: str, broker_url: str, companies: int = COMPANIES, stuck_after: float = 60
) -> dict[str, Any]:
    return {
        "mode": "production",
        "seed": 42,
        "clock": {"kind": "simulated", "start": CLOCK_START.isoformat()},
        "database_url": database_url,
        "broker_url": broker_url,
        "companies": {
            "production": {
                "interval": "P7D",
                "min_batch_size": companies,
                "max_batch_size": companies,
            }
        },
        "landing": {"enabled": False},
        "fleet": {"stuck_after": stuck_after},
    }


def week_range(days: float = 7) -> tuple[datetime, datetime]:
    """From just before the company batch (so it is in the range) to `days` after it."""
    return CLOCK_START + WEEK - timedelta(hours=1), CLOCK_START + WEEK + timedelta(days=days)


class BackfillFleet(PrivateFleet):
    """A private redis-server and N workers (no beat) on `config`; `plain` starts workers as
    `celery -A emugen worker` without -Q, to show the backfill's queue is the default one."""

    def __init__(
        self, folder: Path, config: dict[str, Any], workers: int, plain: bool = False
    ) -> None:
        super().__init__(folder, config["database_url"], 1.0, workers=workers)
        del self.children["beat"]
        self.data = {**config, "broker_url": self.broker_url}
        write_yaml_atomically(self.config_path, self.data)
        if plain:
            for name in self.workers:
                args = self.children[name].args
                at = args.index("-Q")
                self.children[name].args = args[:at] + args[at + 2 :]

    def start(self) -> None:
        self.start_redis()
        init_db(make_engine(self.database_url))
        for name in self.workers:
            self.start_child(name, wait=False)
        for name in self.workers:
            self.wait_ready(name)

    def backfill(self, start: datetime, end: datetime, log: Path) -> Any:
        """`emugen backfill` on this fleet's config, as a subprocess."""
        return spawn(
            [
                sys.executable,
                "-m",
                "emugen",
                "backfill",
                "--from",
                start.isoformat(),
                "--to",
                end.isoformat(),
                "--config",
                str(self.config_path),
            ],
            log,
            env=self.env(),
            cwd=self.folder,
        )


def event_records(engine: Engine) -> int:
    with read_session(engine) as session:
        total = session.scalar(
            select(func.coalesce(func.sum(BatchRow.record_count), 0)).where(
                BatchRow.stream == Stream.events.value, BatchRow.status == "gold"
            )
        )
    return int(total or 0)  # PostgreSQL sums to a Decimal


def fleet_run(folder: Path, database_url: str, workers: int, days: float) -> dict[str, Any]:
    """Seconds from `emugen backfill` starting to its exit 0, and the events it made."""
    fleet = BackfillFleet(folder, week_config(database_url, ""), workers)
    with fleet:
        fleet.start()
        start, end = week_range(days)
        log = folder / "backfill.log"
        t0, machine = time.perf_counter(), machine_jiffies()
        process = fleet.backfill(start, end, log)
        code = process.wait()
        seconds = time.perf_counter() - t0
        busy = busy_share(machine, machine_jiffies())
        pids = [p for name in fleet.workers for p in fleet.pids().get(f"{name}-pool", [])]
        worker_cpu = sum(cpu_seconds(p) for p in pids)
        if code != 0:
            raise RuntimeError(f"emugen backfill exited {code}: {log.read_text()[-2000:]}")
    engine = make_engine(database_url)
    events = event_records(engine)
    engine.dispose()
    dispose_engines(database_url)
    return {
        "workers": workers,
        "seconds": seconds,
        "events": events,
        "events_per_s": events / seconds,
        "machine_busy": busy,
        "worker_cpu_s": worker_cpu,
    }


def in_process(database_url: str, plan: Plan) -> dict[str, Any]:
    """The same batches in order in this process, each generated, landed, refined and built
    by the stage functions `emugen pipeline run` calls: the rate without the fleet."""
    engine = make_engine(database_url)
    init_db(engine)
    fingerprint = plan.settings.fingerprint()
    t0, machine, cpu = time.perf_counter(), machine_jiffies(), time.process_time()
    for tick in plan.ticks:
        run_tick(
            engine,
            plan.settings.landing,
            TickMessage.parse(tick.message(fingerprint)),
            worker="in-process",
        )
    seconds = time.perf_counter() - t0
    busy, worker_cpu = busy_share(machine, machine_jiffies()), time.process_time() - cpu
    events = event_records(engine)
    engine.dispose()
    return {
        "seconds": seconds,
        "events": events,
        "events_per_s": events / seconds,
        "machine_busy": busy,
        "worker_cpu_s": worker_cpu,
    }


def bench_backfill(days: float = 7, database: str | None = None) -> dict[str, Any]:
    settings = parse_settings(week_config("sqlite://", "redis://"), env=False)
    start, end = week_range(days)
    plan = plan_backfill(settings, start, end, (Stream.companies, Stream.events))
    drivers = max((_drivers(t.spec) for t in plan.ticks if t.stream is Stream.events), default=0)
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="emugen-backfill-") as name:
        folder = Path(name)
        with private_database(database, folder, "inprocess") as url:
            runs["in_process"] = in_process(url, plan)
            print(f"in-process: {runs['in_process']}", file=sys.stderr, flush=True)
            dialect = make_engine(url).dialect.name
        for workers in (1, 2):
            sub = folder / f"w{workers}"
            sub.mkdir()
            with private_database(database, sub, "fleet") as url:
                runs[f"workers_{workers}"] = fleet_run(sub, url, workers, days)
            print(f"{workers} worker(s): {runs[f'workers_{workers}']}", file=sys.stderr, flush=True)
    one, two, base = runs["workers_1"], runs["workers_2"], runs["in_process"]
    speedup = two["events_per_s"] / one["events_per_s"]
    return {
        "database": dialect,
        "days": days,
        "ticks": len(plan.ticks),
        "expected_events": plan.counts[Stream.events][1],
        "active_drivers": drivers,
        **runs,
        "speedup_1_to_2": speedup,
        "per_core_efficiency": speedup / 2,
        "ratio_1_worker_to_in_process": one["events_per_s"] / base["events_per_s"],
        "ratio_2_workers_to_in_process": two["events_per_s"] / base["events_per_s"],
    }


def _drivers(spec: Any) -> int:
    from emugen.generate.events import active_drivers

    return active_drivers(spec)


def format_backfill(r: dict[str, Any]) -> str:
    def row(label: str, run: dict[str, Any]) -> str:
        return (
            f"  {label:<28} {run['seconds']:8.1f} s  {run['events']:>11,} events  "
            f"{run['events_per_s']:>9,.0f} events/s; {run['worker_cpu_s']:6.1f} CPU s in "
            f"the generating process(es) ({run['events'] / max(run['worker_cpu_s'], 1e-9):,.0f}"
            f" events per CPU s); machine {run['machine_busy']:4.0%} busy (all processes)"
        )

    return "\n".join(
        [
            f"backfill on {r['database']}: {r['days']:g} simulated days of production, "
            f"{r['ticks']:,} ticks, ~{r['active_drivers']:,} active drivers, "
            f"{r['expected_events']:,} events expected",
            row("in-process, same batches", r["in_process"]),
            row("emugen backfill, 1 worker", r["workers_1"]),
            row("emugen backfill, 2 workers", r["workers_2"]),
            f"  speed-up 1 -> 2 workers {r['speedup_1_to_2']:.2f}x (per-core efficiency "
            f"{r['per_core_efficiency']:.0%} on this 2-core machine); vs in-process: 1 worker "
            f"{r['ratio_1_worker_to_in_process']:.2f}x, 2 workers "
            f"{r['ratio_2_workers_to_in_process']:.2f}x",
        ]
    )
