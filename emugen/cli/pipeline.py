"""`emugen pipeline run`: batches through every layer in this process, no broker."""

from __future__ import annotations

from pathlib import Path

import click

from emugen.cli.options import config_option, store_engine
from emugen.settings import MAX_BATCH, load_settings
from emugen.vocabulary import Stream


@click.group("pipeline")
def pipeline_group() -> None:
    """Run batches through bronze -> silver -> gold in this process (no broker).

    \b
    Example:
      emugen pipeline run --batches 3
    """


@pipeline_group.command("run")
@click.option(
    "--batches",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Batches of each stream.",
)
@click.option(
    "--stream",
    type=click.Choice([s.value for s in Stream]),
    default=None,
    help="Only this stream (default: companies then events, each round).",
)
@click.option(
    "--size",
    type=click.IntRange(min=0, max=MAX_BATCH),
    default=None,
    help="Exact record count per batch instead of the mode's rule.",
)
@config_option
def pipeline_run(
    batches: int, stream: str | None, size: int | None, config_file: Path | None
) -> None:
    """Land, refine and aggregate N batches of each stream, then print a summary.

    \b
    Example:
      emugen pipeline run --batches 3 --stream events --size 100
    """
    from emugen.db.session import read_session
    from emugen.pipeline.reconcile import reconcile
    from emugen.pipeline.runner import STREAM_ORDER, run_pipeline

    settings = load_settings(config_file)
    engine = store_engine(settings)
    streams = (Stream(stream),) if stream else STREAM_ORDER
    done = run_pipeline(engine, settings, batches, streams, size=size)
    for p in done:
        click.echo(
            f"{p.landed.batch_id}  records {p.landed.record_count:>7}  valid {p.valid:>7}"
            f"  quarantined {p.quarantined:>6}  {p.seconds * 1000:8.1f} ms"
        )
    with read_session(engine) as session:
        r = reconcile(session)
    click.echo(
        f"{len(done)} batches, {sum(p.landed.record_count for p in done)} records; "
        f"reconciliation: injected {r.injected}, caught {r.caught} "
        f"({r.caught_pct:.1f} %), missed {r.missed}, "
        f"false alarms {sum(r.false_alarms.values())}"
    )
