"""`emugen bench probe ...`: the one-off measurements docs/BENCHMARKS.md cites, kept runnable.

Only click is imported here; each command imports its machinery when it runs.
"""

from __future__ import annotations

from pathlib import Path

import click

LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/test"


@click.group("probe")
def probe_group() -> None:
    """Single measurements behind figures in the benchmark notes (no baseline beside them).

    \b
    Example:
      emugen lab bench probe stage-cpu
    """


@probe_group.command("stage-cpu")
@click.argument("events", type=click.IntRange(min=1), default=100_000)
def stage_cpu_cmd(events: int) -> None:
    """Wall and CPU seconds of one production EVENTS batch's stages on SQLite, and a content
    hash of what they stored (run once per tree to compare two trees).

    \b
    Example:
      emugen lab bench probe stage-cpu
    """
    from emugen.lab.probes import stage_cpu

    click.echo(stage_cpu(events))


@probe_group.command("silver-memory")
@click.option(
    "--page",
    type=click.IntRange(min=1),
    default=None,
    help="Bronze rows per keyset page [default: silver's PAGE].",
)
@click.option(
    "--events",
    type=click.IntRange(min=1),
    default=1_000_000,
    show_default=True,
    help="Events in the probed batch.",
)
@click.option(
    "--database",
    default=LOCAL_PG,
    show_default=True,
    help="A PostgreSQL URL (a private schema is made and dropped).",
)
def silver_memory_cmd(page: int | None, events: int, database: str) -> None:
    """Peak RSS of silver on PostgreSQL for one big events batch, at a chosen page size.

    \b
    Example:
      emugen lab bench probe silver-memory --events 100000
    """
    from emugen.lab.probes import silver_memory
    from emugen.pipeline.silver import PAGE

    click.echo(silver_memory(page or PAGE, events, database))


@probe_group.command("stages")
@click.argument("db", type=click.Path(exists=True, dir_okay=False))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("seconds", type=click.FloatRange(min=0))
def stages_cmd(db: str, out: Path, seconds: float) -> None:
    """Beside a running soak: append to OUT, once a minute for SECONDS, each stage's mean time
    for the batches of the last minute in the SQLite store DB (read-only).

    \b
    Example:
      emugen lab bench probe stages var/soak/soak.db stages.log 3500
    """
    from emugen.lab.probes import stage_log

    stage_log(db, out, seconds)


@probe_group.command("growth")
@click.option("--replay", is_flag=True, help="Memory over a 60-minute soak's company growth.")
@click.option("--traced", is_flag=True, help="With tracemalloc (slower).")
@click.option("--growth", type=float, default=None, help="eligible.GROWTH for the replay.")
def growth_cmd(replay: bool, traced: bool, growth: float | None) -> None:
    """Per-event-batch costs that grow with the company count, without a database.

    \b
    Example:
      emugen lab bench probe growth
    """
    from emugen.lab import growth as g
    from emugen.settings import Settings

    settings = Settings()
    if growth is not None:
        from emugen.generate import eligible

        eligible.GROWTH = growth
    if replay:
        click.echo(g.replay(settings, traced))
        return
    for made in (10_000, 100_000, 360_000):
        click.echo(g.probe(settings, made))
