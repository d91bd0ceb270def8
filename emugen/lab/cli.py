"""Click commands of the lab: `emugen bench` and its subcommands, `emugen soak`, `emugen chaos`.

Only click is imported here; each command imports its machinery when it runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import click


class Duration(click.ParamType):
    """Seconds, a short form (90s, 60m, 1h) or ISO-8601 (PT1H), as in the config file."""

    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        from pydantic import TypeAdapter, ValidationError

        from emugen.settings import Interval

        with suppress(TypeError, ValueError):
            value = float(value)  # "0.25" is seconds too
        try:
            return TypeAdapter(Interval).validate_python(value).total_seconds()
        except ValidationError as exc:
            self.fail(exc.errors()[0]["msg"].removeprefix("Value error, "), param, ctx)


DURATION = Duration()


def suite_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options of `emugen bench` and `emugen bench all` (the same command)."""
    for option in reversed([
        click.option("--quick", is_flag=True,
                     help="A short run (~2 min on SQLite, ~4 with --database): smaller batch, "
                          "shorter fleet runs."),
        click.option("--database", default=None, metavar="URL",
                     help="Also run (a)-(c) on this PostgreSQL (private schema, dropped after)."),
        click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
                     default=Path("bench.json"), show_default=True,
                     help="Write every figure here as JSON."),
    ]):
        f = option(f)
    return f


def run_suite(quick: bool, database: str | None, out: Path) -> None:
    from emugen.lab.suite import bench_all, table

    result = bench_all(quick=quick, database=database,
                       progress=lambda line: click.echo(line, err=True))
    out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    click.echo(table(result))
    click.echo(f"figures written to {out}")


@click.command("all")
@suite_options
def all_cmd(quick: bool, database: str | None, out: Path) -> None:
    """(a) pipeline, (b) fleet latency, (c) sustainable cadence, (d) dashboard freshness."""
    run_suite(quick, database, out)


@click.command("cadence")
@click.option("--workers", type=click.IntRange(1, 16), default=1, show_default=True)
@click.option("--database", default=None, metavar="URL",
              help="A PostgreSQL URL (private schema); default: a temporary SQLite file.")
@click.option("--step-seconds", type=click.FloatRange(min=2), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def cadence_cmd(workers: int, database: str | None, step_seconds: float, as_json: bool) -> None:
    """Highest sustainable cadence: step the interval down (1 s ... 0.1 s) until it skips."""
    from emugen.lab.cadence import bench_cadence, format_cadence

    result = bench_cadence(workers, database, step_seconds=step_seconds)
    click.echo(json.dumps(result, indent=2) if as_json else format_cadence(result))


@click.command("soak")
@click.option("--duration", type=DURATION, required=True,
              help="How long the fleet generates: 180, 3m, 1h, PT1H.")
@click.option("--interval", type=DURATION, default="1", show_default=True,
              help="Tick interval of both streams.")
@click.option("--workers", type=click.IntRange(1, 16), default=1, show_default=True,
              help="Worker processes (each -c 1).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("var/soak"), show_default=True,
              help="Folder for soak.csv, soak.svg, verdict.json, the logs and soak.db.")
@click.option("--no-web", is_flag=True, help="Do not run the dashboard.")
@click.option("--warmup", type=DURATION, default=None,
              help="Seconds left out before the first tenth's p95 [default: min(max(10 s, "
                   "5 intervals), duration/10)].")
@click.option("--strict", is_flag=True,
              help="Judge the p95 trend at 1.2x without the sampling-noise allowance.")
@click.option("--retain", type=DURATION, default=None,
              help="fleet.retain_batches_for of the run (e.g. 10m), so retention prunes "
                   "during it [default: off].")
@click.option("--prune-interval", type=DURATION, default="60", show_default=True,
              help="fleet.prune_interval when --retain is given.")
def soak_cmd(**opts: Any) -> None:
    """Run the real fleet, sample RSS/queues/latency/reconciliation; exit 0 on PASS, 1 on FAIL."""
    from emugen.lab.soak import SoakOptions, run_soak

    retain, every = opts["retain"], opts["prune_interval"]
    fleet = {} if retain is None else {"retain_batches_for": retain, "prune_interval": every}
    options = SoakOptions(duration=opts["duration"], interval=opts["interval"],
                          workers=opts["workers"], out=opts["out"], web=not opts["no_web"],
                          warmup=opts["warmup"], strict=opts["strict"], fleet=fleet)
    click.echo(f"soak: {options.duration:g} s at {options.interval:g} s with {options.workers} "
               f"worker(s), sampling every {options.sample_every:g} s, warm-up "
               f"{options.warmup_s:g} s" + (", strict" if options.strict else "")
               + (f", retention {retain:g} s pruned every {every:g} s" if retain
                  else ", retention off") + f"; output in {options.out}", err=True)
    result = run_soak(options, progress=lambda line: click.echo(line, err=True))
    click.echo(result.report())
    sys.exit(0 if result.passed else 1)


@click.command("chaos")
@click.option("--duration", type=DURATION, default="120", show_default=True)
@click.option("--interval", type=DURATION, default="0.5", show_default=True)
@click.option("--workers", type=click.IntRange(2, 16), default=2, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("var/chaos"), show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Seeds the kill plan.")
@click.option("--lock-seconds", type=click.FloatRange(0.5, 25), default=5.0, show_default=True,
              help="How long the SQLite write lock is held (busy timeout is 30 s).")
@click.option("--kill-every", type=click.FloatRange(min=3), default=10.0, show_default=True,
              help="Mean seconds between worker kills.")
def chaos_cmd(duration: float, interval: float, workers: int, out: Path, seed: int,
              lock_seconds: float, kill_every: float) -> None:
    """Soak while killing workers, restarting Redis and locking SQLite; exit 0 on PASS."""
    from emugen.lab.chaos import Faults, run_chaos

    click.echo(f"chaos: {duration:g} s at {interval:g} s with {workers} workers; output in "
               f"{out}", err=True)
    result = run_chaos(duration, out, interval=interval, workers=workers,
                       faults=Faults(seed=seed, lock_s=lock_seconds, kill_every=kill_every),
                       progress=lambda line: click.echo(line, err=True))
    click.echo(result.report())
    sys.exit(0 if result.passed else 1)


@click.command("grade")
@click.option("--records", type=click.IntRange(min=1000), default=1_000_000, show_default=True)
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def grade_cmd(records: int, repeat: int, as_json: bool) -> None:
    """`emugen grade` on N records (both matching modes) vs the hand-written DuckDB join."""
    from emugen.lab.grade import bench_grade, format_grade

    result = bench_grade(records, repeat)
    click.echo(json.dumps(result, indent=2) if as_json else format_grade(result))


@click.command("grade-gold")
@click.option("--records", type=click.IntRange(min=1000), default=1_000_000, show_default=True)
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def grade_gold_cmd(records: int, repeat: int, as_json: bool) -> None:
    """`emugen grade --gold` on N events with arrival conditions vs a hand-written DuckDB
    GROUP BY + FULL OUTER JOIN of the same files."""
    from emugen.lab.grade_gold import bench_grade_gold, format_grade_gold

    result = bench_grade_gold(records, repeat)
    click.echo(json.dumps(result, indent=2) if as_json else format_grade_gold(result))


@click.command("export")
@click.option("--rows", type=click.IntRange(min=10), default=2_000_000, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["parquet", "jsonl", "csv"]),
              default="parquet", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def export_cmd(rows: int, fmt: str, as_json: bool) -> None:
    """Peak RSS of `emugen export` bronze and truth at N/10 and N records (flat = streaming)."""
    from emugen.lab.export import bench_export, format_export

    result = bench_export(rows, fmt)
    click.echo(json.dumps(result, indent=2) if as_json else format_export(result))


# -- the `emugen bench` group: its own subcommands, then the ones defined elsewhere in the lab


@click.group("bench", invoke_without_command=True)
@suite_options
@click.pass_context
def bench_group(ctx: click.Context, quick: bool, database: str | None, out: Path) -> None:
    """Benchmarks: each figure printed beside its baseline, measured in the same run.

    With no subcommand: `emugen bench all` (the options here are its options)."""
    if ctx.invoked_subcommand is None:
        run_suite(quick, database, out)


@bench_group.command("generate")
@click.option("--events", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_generate_cmd(events: int, repeat: int, as_json: bool) -> None:
    """Generate one production driver batch in memory; compare with json.dumps and a naive loop."""
    from emugen.lab.generate import bench_generate, format_generate

    result = bench_generate(events=events, repeat=repeat)
    click.echo(json.dumps(result, indent=2) if as_json else format_generate(result))


@bench_group.command("json-types")
@click.option("--database", required=True, metavar="URL",
              help="A PostgreSQL URL (the tables go in a private schema, dropped after).")
@click.option("--events", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True)
def bench_json_types_cmd(database: str, events: int, repeat: int) -> None:
    """Bronze payloads and a spec as text, json and jsonb on PostgreSQL: time and fidelity."""
    from emugen.lab.jsontypes import bench_json_types, format_json_types

    if not database.startswith("postgres"):
        raise click.BadParameter(f"{database!r}: json and jsonb are PostgreSQL types; give a "
                                 "postgresql:// URL", param_hint="--database")
    click.echo(format_json_types(bench_json_types(database, events, repeat)))


@bench_group.command("pipeline")
@click.option("--events", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option("--database", default=None, metavar="URL",
              help="A SQLAlchemy URL (PostgreSQL runs in a private schema, dropped after); "
                   "default: a temporary SQLite file.")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--landing", type=click.Choice(["jsonl", "parquet", "off"]), default="jsonl",
              show_default=True, help="Land the batch's file in this format (timed apart).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_pipeline_cmd(events: int, database: str | None, repeat: int, landing: str,
                       as_json: bool) -> None:
    """One production driver batch generate -> bronze -> land -> silver -> gold, vs the
    SQLite floor; a size other than 100,000 runs beside the 100,000-event baseline, each
    size in a fresh process."""
    from emugen.lab.pipeline import bench_sizes, format_sizes

    result = bench_sizes(events=events, database=database, repeat=repeat, landing=landing)
    click.echo(json.dumps(result, indent=2) if as_json else format_sizes(result))


@bench_group.command("fleet")
@click.option("--seconds", type=click.FloatRange(min=5), default=60, show_default=True)
@click.option("--interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True)
@click.option("--size", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--database", default=None, metavar="URL",
              help="A PostgreSQL URL (private schema); default: a temporary SQLite file.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_fleet_cmd(seconds: float, interval: float, size: int, database: str | None,
                    as_json: bool) -> None:
    """Real redis-server, worker and beat: tick -> gold latency and dispatch error vs floor."""
    from emugen.lab.fleet import bench_fleet, format_fleet

    result = bench_fleet(seconds=seconds, interval=interval, size=size, database=database)
    click.echo(json.dumps(result, indent=2) if as_json else format_fleet(result))


@bench_group.command("batchpage")
@click.option("--events", type=click.IntRange(min=100), default=100_000, show_default=True)
@click.option("--database", default=None, metavar="URL",
              help="A PostgreSQL URL (private schema, dropped after); default: a temporary "
                   "SQLite file.")
@click.option("--repeat", type=click.IntRange(min=3), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_batchpage_cmd(events: int, database: str | None, repeat: int, as_json: bool) -> None:
    """The batch page's first and last records page of a big batch vs count(*) of its rows."""
    from emugen.lab.batchpage import bench_batchpage, format_batchpage

    result = bench_batchpage(events, database, repeat)
    click.echo(json.dumps(result, indent=2) if as_json else format_batchpage(result))


@bench_group.command("backfill")
@click.option("--days", type=click.FloatRange(min=0.1, max=7), default=7, show_default=True,
              help="Simulated days of production after the company batch.")
@click.option("--database", default=None, metavar="URL",
              help="A PostgreSQL URL (private schemas); default: temporary SQLite files.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_backfill_cmd(days: float, database: str | None, as_json: bool) -> None:
    """`emugen backfill` of a simulated week at ~2,000 drivers: 1 and 2 workers vs in-process."""
    from emugen.lab.backfill import bench_backfill, format_backfill

    result = bench_backfill(days=days, database=database)
    click.echo(json.dumps(result, indent=2) if as_json else format_backfill(result))


def _register_bench() -> None:
    from emugen.lab.history import history_cmd
    from emugen.lab.landing import landing_cmd  # click only; lazy inside
    from emugen.lab.sse import sse_cmd  # click only; lazy inside

    for command in (sse_cmd, landing_cmd, all_cmd, cadence_cmd, grade_cmd, grade_gold_cmd,
                    export_cmd, history_cmd):
        bench_group.add_command(command)


_register_bench()
