"""`emugen bench landing`: the landing zone's cost, each figure beside its same-run baseline.

(1) tick -> gold p95 of the real fleet (redis-server, one worker, beat at 1 s) with the landing
zone on vs off, runs alternated; (2) one 100,000-event production batch written as Parquet
by the landing zone vs pyarrow's own `write_table` of the same payload column.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import click

WARMUP_BATCHES = 3  # per stream, as in `emugen bench fleet`


def landing_ms(log: str) -> list[float]:
    """The worker's own time in `land` per batch, from its `stage=landing` log lines."""
    return [float(m) for m in re.findall(r"stage=landing .*?duration_ms=([0-9.]+)", log)]


def fleet_run(
    folder: Path, url: str, seconds: float, interval: float, size: int, landing: dict[str, Any]
) -> tuple[list[float], int, list[float], list[float]]:
    """(tick -> gold ms after warm-up, batches, bronze -> landed ms of each landed file,
    the worker's time in `land` per batch)."""
    from sqlalchemy import select

    from emugen.db.models import LandedFile
    from emugen.db.session import engine_for, read_session
    from emugen.fleet.reload import write_yaml_atomically
    from emugen.fleet.supervisor import wait_for
    from emugen.lab.fleet import all_batches, settled
    from emugen.lab.processes import PrivateFleet

    with PrivateFleet(folder, url, interval, size=(size, size)) as fleet:
        fleet.data = {**fleet.data, "landing": landing}
        write_yaml_atomically(fleet.config_path, fleet.data)
        fleet.start()
        time.sleep(seconds)
        fleet.stop_child("beat")
        wait_for(lambda: settled(url), 60, "every batch to reach gold", every=0.2)
        rows = all_batches(url)
        spent = landing_ms(fleet.children["worker1"].text())
    with read_session(engine_for(url)) as session:
        stamps = session.execute(select(LandedFile.batch_id, LandedFile.landed_at)).all()
    bronze_at = {r.batch_id: r.bronze_at for r in rows}
    landed = [(at - bronze_at[b]).total_seconds() * 1000 for b, at in stamps]
    latencies = []
    for stream in ("companies", "events"):
        mine = sorted((r for r in rows if r.stream == stream), key=lambda r: r.seq)
        latencies += [
            (r.gold_at - r.scheduled_at).total_seconds() * 1000
            for r in mine[WARMUP_BATCHES:]
            if r.gold_at is not None
        ]
    return latencies, len(rows), landed, spent


def bench_fleet_landing(
    seconds: float, interval: float, size: int, rounds: int, fmt: str
) -> dict[str, Any]:
    from emugen.lab import private_database
    from emugen.status.stats import percentile

    runs: dict[str, list[float]] = {"off": [], "on": []}
    counts = {"off": [0, 0], "on": [0, 0]}
    delays: list[float] = []
    spent: list[float] = []
    per_run: dict[str, list[float]] = {"off": [], "on": []}
    for i in range(rounds):
        for name in ("off", "on") if i % 2 == 0 else ("on", "off"):  # alternate: no drift bias
            with tempfile.TemporaryDirectory(prefix=f"emugen-land-{name}-") as folder:
                landing = (
                    {"enabled": False}
                    if name == "off"
                    else {"root": str(Path(folder) / "zone"), "format": fmt}
                )
                with private_database(None, Path(folder)) as url:
                    lat, batches, landed, took = fleet_run(
                        Path(folder), url, seconds, interval, size, landing
                    )
            runs[name] += lat
            per_run[name].append(percentile(lat, 95))
            counts[name][0] += batches
            counts[name][1] += len(landed)
            delays += landed
            spent += took
    p95 = {name: percentile(lat, 95) for name, lat in runs.items()}
    return {
        "seconds_per_run": seconds,
        "interval_s": interval,
        "records_per_batch": size,
        "rounds": rounds,
        "format": fmt,
        "batches_off": counts["off"][0],
        "batches_on": counts["on"][0],
        "landed_on": counts["on"][1],
        "landed_off": counts["off"][1],
        "p50_off_ms": percentile(runs["off"], 50),
        "p50_on_ms": percentile(runs["on"], 50),
        "p95_off_ms": p95["off"],
        "p95_on_ms": p95["on"],
        "p95_added_pct": (p95["on"] / p95["off"] - 1) * 100,
        "bronze_to_landed_p50_ms": percentile(delays, 50),
        "bronze_to_landed_p95_ms": percentile(delays, 95),
        "p95_per_run_off_ms": per_run["off"],
        "p95_per_run_on_ms": per_run["on"],
        "land_p50_ms": percentile(spent, 50),
        "land_p95_ms": percentile(spent, 95),
        "land_p50_pct_of_off_p95": percentile(spent, 50) / p95["off"] * 100,
    }


def bench_parquet(events: int, repeat: int) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from emugen.generate import build_spec, draft
    from emugen.lab import bench_settings, best_of
    from emugen.sinks.landing import BatchFacts, parquet_bytes
    from emugen.vocabulary import Mode

    spec = build_spec(
        bench_settings(), "events", 1, watermark=2_000, size=events, mode=Mode.production
    )
    lines = [line for chunk in draft(spec).line_chunks() for line in chunk]
    facts = BatchFacts(
        "events-000000001",
        "events",
        1,
        "production",
        spec.model_dump_json(),
        spec.interval_start,
        spec.interval_end,
        spec.interval_end,
        len(lines),
    )

    def baseline() -> int:
        sink = io.BytesIO()
        pq.write_table(pa.table({"payload": pa.array(lines, pa.string())}), sink)
        return len(sink.getvalue())

    ours_s = base_s = float("inf")
    for _ in range(repeat):  # alternated, so a noisy neighbour hits both alike
        took, ours = best_of(1, lambda: parquet_bytes(facts, lines))
        ours_s = min(ours_s, took)
        took, base_bytes = best_of(1, baseline)
        base_s = min(base_s, took)
    again = parquet_bytes(facts, lines)
    return {
        "events": len(lines),
        "repeat": repeat,
        "landing_parquet_s": ours_s,
        "landing_parquet_bytes": len(ours),
        "write_table_s": base_s,
        "write_table_bytes": base_bytes,
        "ratio": ours_s / base_s,
        "same_bytes_twice": again == ours,
    }


def format_landing(fleet: dict[str, Any] | None, parquet: dict[str, Any] | None) -> str:
    lines = []
    if fleet is not None:
        f = fleet
        lines += [
            f"landing zone vs none: real redis-server, 1 worker (-c 1), beat every "
            f"{f['interval_s']:g} s, {f['records_per_batch']} records per batch, "
            f"{f['rounds']} round(s) of {f['seconds_per_run']:g} s each, alternated; "
            f"format {f['format']}",
            f"  landing off  tick -> gold p50 {f['p50_off_ms']:7.1f} ms   p95 "
            f"{f['p95_off_ms']:7.1f} ms   ({f['batches_off']} batches, "
            f"{f['landed_off']} files)",
            f"  landing on   tick -> gold p50 {f['p50_on_ms']:7.1f} ms   p95 "
            f"{f['p95_on_ms']:7.1f} ms   ({f['batches_on']} batches, "
            f"{f['landed_on']} files)",
            f"  p95 added by the landing zone: {f['p95_added_pct']:+.1f} %  (target <= 10 %)",
            "  p95 of each run, off: "
            + ", ".join(f"{v:.0f}" for v in f["p95_per_run_off_ms"])
            + " ms; on: "
            + ", ".join(f"{v:.0f}" for v in f["p95_per_run_on_ms"])
            + " ms",
            f"  bronze commit -> file landed (the land task runs after silver and gold)  p50 "
            f"{f['bronze_to_landed_p50_ms']:.1f} ms   p95 {f['bronze_to_landed_p95_ms']:.1f} ms",
            f"  the worker's own time in land() per batch  p50 {f['land_p50_ms']:.1f} ms   p95 "
            f"{f['land_p95_ms']:.1f} ms  (p50 = {f['land_p50_pct_of_off_p95']:.1f} % of the "
            "off run's tick -> gold p95)",
        ]
    if parquet is not None:
        p = parquet
        lines += [
            f"parquet: one production driver batch of {p['events']:,} events, best of "
            f"{p['repeat']}",
            f"  landing zone parquet_bytes    {p['landing_parquet_s']:7.3f} s  "
            f"{p['landing_parquet_bytes']:>12,} bytes (4 columns, zstd)",
            f"  pyarrow write_table (payload) {p['write_table_s']:7.3f} s  "
            f"{p['write_table_bytes']:>12,} bytes (1 column, defaults)",
            f"  ratio {p['ratio']:.2f}x  (target <= 1.5x); same bytes when written twice: "
            f"{'yes' if p['same_bytes_twice'] else 'NO'}",
        ]
    return "\n".join(lines)


@click.command("landing")
@click.option(
    "--seconds",
    type=click.FloatRange(min=5),
    default=60,
    show_default=True,
    help="Length of each fleet run.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="Tick interval of both streams.",
)
@click.option(
    "--size", type=click.IntRange(min=1), default=20, show_default=True, help="Records per batch."
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Pairs of fleet runs (off/on, then on/off, ...).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "parquet"]),
    default="jsonl",
    show_default=True,
    help="Landing format of the fleet runs.",
)
@click.option(
    "--events",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="Events in the benchmarked batch.",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Runs per figure; the best is reported beside every run's.",
)
@click.option("--skip-fleet", is_flag=True, help="Only the Parquet figure.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def landing_cmd(  # noqa: PLR0913 - the parameters ARE the command's options
    seconds: float,
    interval: float,
    size: int,
    rounds: int,
    fmt: str,
    events: int,
    repeat: int,
    skip_fleet: bool,
    as_json: bool,
) -> None:
    """Landing zone cost: fleet tick -> gold p95 on vs off; Parquet vs pyarrow write_table.

    \b
    Example:
      emugen lab bench landing --seconds 30 --rounds 4
    """
    parquet = bench_parquet(events, repeat)
    fleet = None if skip_fleet else bench_fleet_landing(seconds, interval, size, rounds, fmt)
    if as_json:
        click.echo(json.dumps({"fleet": fleet, "parquet": parquet}, indent=2))
    else:
        click.echo(format_landing(fleet, parquet))
