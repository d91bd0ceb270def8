"""Click commands of the lab's benchmarks: `emugen lab bench` (alias `emugen bench`).

Only click is imported here; each command imports its machinery when it runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from emugen.lab.probe_cli import probe_group

# options several benchmarks share, said once
REPEAT = click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Runs per figure; the best is reported beside every run's.",
)
EVENTS = click.option(
    "--events",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="Events in the benchmarked batch.",
)


def suite_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options of `emugen bench` and `emugen bench all` (the same command)."""
    for option in reversed(
        [
            click.option(
                "--quick",
                is_flag=True,
                help="A short run (~2 min on SQLite, ~4 with --database): smaller batch, "
                "shorter fleet runs.",
            ),
            click.option(
                "--database",
                default=None,
                metavar="URL",
                help="Also run (a)-(c) on this PostgreSQL (private schema, dropped after).",
            ),
            click.option(
                "--out",
                default="bench.json",
                show_default=True,
                metavar="FILE|-",
                help="Write every figure here as JSON (`-`: stdout, the table then goes "
                "to stderr); checked before the run.",
            ),
            click.option("--force", is_flag=True, help="Replace --out when it exists."),
        ]
    ):
        f = option(f)
    return f


def run_suite(quick: bool, database: str | None, out: str, force: bool) -> None:
    from emugen.files.target import check_output
    from emugen.files.write import write_output
    from emugen.lab.suite import bench_all, table

    target = check_output(out, force=force)  # refused now, not after minutes of measuring
    result = bench_all(
        quick=quick, database=database, progress=lambda line: click.echo(line, err=True)
    )
    write_output(target, (json.dumps(result, indent=2, default=str) + "\n").encode())
    click.echo(table(result), err=target.is_stdout)
    click.echo(f"figures written to {'stdout' if target.is_stdout else out}", err=target.is_stdout)


@click.command("all")
@suite_options
def all_cmd(quick: bool, database: str | None, out: str, force: bool) -> None:
    """(a) pipeline, (b) fleet latency, (c) sustainable cadence, (d) dashboard freshness.

    \b
    Example:
      emugen lab bench all --quick
    """
    run_suite(quick, database, out, force)


@click.command("cadence")
@click.option(
    "--workers",
    type=click.IntRange(1, 16),
    default=1,
    show_default=True,
    help="Worker processes (each -c 1).",
)
@click.option(
    "--database",
    default=None,
    metavar="URL",
    help="A PostgreSQL URL (private schema); default: a temporary SQLite file.",
)
@click.option(
    "--step-seconds",
    type=click.FloatRange(min=2),
    default=10,
    show_default=True,
    help="How long each cadence step lasts.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def cadence_cmd(workers: int, database: str | None, step_seconds: float, as_json: bool) -> None:
    """Highest sustainable cadence: step the interval down (1 s ... 0.1 s) until it skips.

    \b
    Example:
      emugen lab bench cadence --workers 2
    """
    from emugen.lab.cadence import bench_cadence, format_cadence

    result = bench_cadence(workers, database, step_seconds=step_seconds)
    click.echo(json.dumps(result, indent=2) if as_json else format_cadence(result))


@click.command("grade")
@click.option(
    "--records",
    type=click.IntRange(min=1000),
    default=1_000_000,
    show_default=True,
    help="Records in the synthetic truth.",
)
@REPEAT
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def grade_cmd(records: int, repeat: int, as_json: bool) -> None:
    """`emugen grade` on N records (both matching modes) vs the hand-written DuckDB join.

    \b
    Example:
      emugen lab bench grade --records 1000000
    """
    from emugen.lab.grade import bench_grade, format_grade

    result = bench_grade(records, repeat)
    click.echo(json.dumps(result, indent=2) if as_json else format_grade(result))


@click.command("grade-gold")
@click.option(
    "--records",
    type=click.IntRange(min=1000),
    default=1_000_000,
    show_default=True,
    help="Events in the synthetic run (ten batches).",
)
@REPEAT
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def grade_gold_cmd(records: int, repeat: int, as_json: bool) -> None:
    """`emugen grade --gold` on N events with arrival conditions vs a hand-written DuckDB
    GROUP BY + FULL OUTER JOIN of the same files.

    \b
    Example:
      emugen lab bench grade-gold --records 1000000
    """
    from emugen.lab.grade_gold import bench_grade_gold, format_grade_gold

    result = bench_grade_gold(records, repeat)
    click.echo(json.dumps(result, indent=2) if as_json else format_grade_gold(result))


@click.command("export")
@click.option(
    "--rows",
    type=click.IntRange(min=10),
    default=2_000_000,
    show_default=True,
    help="Rows exported at the larger size (the smaller is a tenth of it).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "jsonl", "csv"]),
    default="parquet",
    show_default=True,
    help="File format of the export.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def export_cmd(rows: int, fmt: str, as_json: bool) -> None:
    """Peak RSS of `emugen export` bronze and truth at N/10 and N records (flat = streaming).

    \b
    Example:
      emugen lab bench export --rows 2000000
    """
    from emugen.lab.export import bench_export, format_export

    result = bench_export(rows, fmt)
    click.echo(json.dumps(result, indent=2) if as_json else format_export(result))


# -- the `emugen bench` group: its own subcommands, then the ones defined elsewhere in the lab


@click.group("bench", invoke_without_command=True)
@suite_options
@click.pass_context
def bench_group(
    ctx: click.Context, quick: bool, database: str | None, out: str, force: bool
) -> None:
    """Benchmarks: each figure printed beside its baseline, measured in the same run.

    With no subcommand: `emugen bench all` (the options here are its options).

    \b
    Example:
      emugen lab bench --quick --out bench.json
    """
    if ctx.invoked_subcommand is None:
        run_suite(quick, database, out, force)


bench_group.add_command(probe_group)


@bench_group.command("generate")
@EVENTS
@REPEAT
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_generate_cmd(events: int, repeat: int, as_json: bool) -> None:
    """Generate one production driver batch in memory; compare with json.dumps and a naive loop.

    \b
    Example:
      emugen lab bench generate --events 100000 --repeat 3
    """
    from emugen.lab.generate import bench_generate, format_generate

    result = bench_generate(events=events, repeat=repeat)
    click.echo(json.dumps(result, indent=2) if as_json else format_generate(result))


@bench_group.command("arrivals")
@EVENTS
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Generation runs, off and on alternated; the best of each batch is reported.",
)
@click.option(
    "--pipeline-repeat",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Pipeline runs, off and on alternated (0: generation only).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_arrivals_cmd(events: int, repeat: int, pipeline_repeat: int, as_json: bool) -> None:
    """Arrival conditions (production rates) on vs off: generation and the pipeline, each
    ratio printed beside the same work with them off in this run.

    \b
    Example:
      emugen lab bench arrivals --events 100000 --repeat 5 --pipeline-repeat 3
    """
    from emugen.lab.arrivals import bench_arrivals, format_arrivals

    result = bench_arrivals(events=events, repeat=repeat, pipeline_repeat=pipeline_repeat)
    click.echo(json.dumps(result, indent=2) if as_json else format_arrivals(result))


@bench_group.command("json-types")
@click.option(
    "--database",
    required=True,
    metavar="URL",
    help="A PostgreSQL URL (the tables go in a private schema, dropped after).",
)
@EVENTS
@REPEAT
def bench_json_types_cmd(database: str, events: int, repeat: int) -> None:
    """Bronze payloads and a spec as text, json and jsonb on PostgreSQL: time and fidelity.

    \b
    Example:
      emugen lab bench json-types --database postgresql://postgres@127.0.0.1:5432/test
    """
    from emugen.lab.jsontypes import bench_json_types, format_json_types

    if not database.startswith("postgres"):
        raise click.BadParameter(
            f"{database!r}: json and jsonb are PostgreSQL types; give a postgresql:// URL",
            param_hint="--database",
        )
    click.echo(format_json_types(bench_json_types(database, events, repeat)))


@bench_group.command("pipeline")
@EVENTS
@click.option(
    "--database",
    default=None,
    metavar="URL",
    help="A SQLAlchemy URL (PostgreSQL runs in a private schema, dropped after); "
    "default: a temporary SQLite file.",
)
@REPEAT
@click.option(
    "--landing",
    type=click.Choice(["jsonl", "parquet", "off"]),
    default="jsonl",
    show_default=True,
    help="Land the batch's file in this format (timed apart).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_pipeline_cmd(
    events: int, database: str | None, repeat: int, landing: str, as_json: bool
) -> None:
    """One production driver batch generate -> bronze -> land -> silver -> gold, vs the
    SQLite floor; a size other than 100,000 runs beside the 100,000-event baseline, each
    size in a fresh process.

    \b
    Example:
      emugen lab bench pipeline --events 1000000 --repeat 1
    """
    from emugen.lab.pipeline import bench_sizes, format_sizes

    result = bench_sizes(events=events, database=database, repeat=repeat, landing=landing)
    click.echo(json.dumps(result, indent=2) if as_json else format_sizes(result))


@bench_group.command("fleet")
@click.option(
    "--seconds",
    type=click.FloatRange(min=5),
    default=60,
    show_default=True,
    help="How long each fleet run lasts.",
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
    "--database",
    default=None,
    metavar="URL",
    help="A PostgreSQL URL (private schema); default: a temporary SQLite file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_fleet_cmd(
    seconds: float, interval: float, size: int, database: str | None, as_json: bool
) -> None:
    """Real redis-server, worker and beat: tick -> gold latency and dispatch error vs floor.

    \b
    Example:
      emugen lab bench fleet --seconds 60
    """
    from emugen.lab.fleet import bench_fleet, format_fleet

    result = bench_fleet(seconds=seconds, interval=interval, size=size, database=database)
    click.echo(json.dumps(result, indent=2) if as_json else format_fleet(result))


@bench_group.command("batchpage")
@click.option(
    "--events",
    type=click.IntRange(min=100),
    default=100_000,
    show_default=True,
    help="Events in the benchmarked batch.",
)
@click.option(
    "--database",
    default=None,
    metavar="URL",
    help="A PostgreSQL URL (private schema, dropped after); default: a temporary SQLite file.",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=3),
    default=20,
    show_default=True,
    help="Runs per figure; the best is reported beside every run's.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_batchpage_cmd(events: int, database: str | None, repeat: int, as_json: bool) -> None:
    """The batch page's first and last records page of a big batch vs count(*) of its rows.

    \b
    Example:
      emugen lab bench batchpage --events 100000
    """
    from emugen.lab.batchpage import bench_batchpage, format_batchpage

    result = bench_batchpage(events, database, repeat)
    click.echo(json.dumps(result, indent=2) if as_json else format_batchpage(result))


@bench_group.command("backfill")
@click.option(
    "--days",
    type=click.FloatRange(min=0.1, max=7),
    default=7,
    show_default=True,
    help="Simulated days of production after the company batch.",
)
@click.option(
    "--database",
    default=None,
    metavar="URL",
    help="A PostgreSQL URL (private schemas); default: temporary SQLite files.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_backfill_cmd(days: float, database: str | None, as_json: bool) -> None:
    """`emugen backfill` of a simulated week at ~2,000 drivers: 1 and 2 workers vs in-process.

    \b
    Example:
      emugen lab bench backfill --days 7
    """
    from emugen.lab.backfill import bench_backfill, format_backfill

    result = bench_backfill(days=days, database=database)
    click.echo(json.dumps(result, indent=2) if as_json else format_backfill(result))


def _register_bench() -> None:
    from emugen.lab.firstgold import first_gold_cmd
    from emugen.lab.history import history_cmd
    from emugen.lab.landing import landing_cmd  # click only; lazy inside
    from emugen.lab.sse import sse_cmd  # click only; lazy inside

    for command in (
        sse_cmd,
        landing_cmd,
        all_cmd,
        cadence_cmd,
        grade_cmd,
        grade_gold_cmd,
        export_cmd,
        history_cmd,
        first_gold_cmd,
    ):
        bench_group.add_command(command)


_register_bench()
