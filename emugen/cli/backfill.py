"""`emugen backfill`: every tick of a range on the simulated clock, fanned out over the fleet."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from emugen.cli.options import config_option
from emugen.errors import BackfillIncomplete, BackfillInputError, BackfillRefused, BrokerError
from emugen.settings import load_settings
from emugen.vocabulary import Mode


def _mode(value: str) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        raise BackfillInputError(
            f"--mode {value!r} is not a mode; allowed: {', '.join(m.value for m in Mode)}"
        ) from None


@click.command("backfill")
@click.option(
    "--from",
    "start",
    required=True,
    metavar="TIME",
    help="Start of the range (ISO-8601 with a timezone, e.g. 2026-01-01T00:00:00Z).",
)
@click.option(
    "--to",
    "end",
    required=True,
    metavar="TIME",
    help="End of the range: every batch whose interval ends in (--from, --to].",
)
@click.option(
    "--streams",
    default="companies,events",
    show_default=True,
    help="Comma-separated streams to make.",
)
@click.option(
    "--mode",
    "mode_name",
    default="production",
    show_default=True,
    help="Whose cadence the ticks follow: production | emulated.",
)
@config_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the ticks, records and estimate; touch neither broker nor store.",
)
@click.option(
    "--yes",
    "confirmed",
    is_flag=True,
    help="Start without asking, however large (see --confirm-above).",
)
@click.option(
    "--confirm-above",
    default=10_000_000,
    show_default=True,
    metavar="RECORDS",
    type=click.IntRange(min=0),
    help="Ask before writing more than this many records (no terminal: needs --yes).",
)
def backfill_cmd(  # noqa: PLR0913 - the parameters ARE the command's options
    start: str,
    end: str,
    streams: str,
    mode_name: str,  # noqa: PLR0913
    config_file: Path | None,
    dry_run: bool,
    confirmed: bool,
    confirm_above: int,
) -> None:
    """Make every batch of a range of simulated time on the Celery fleet, through gold.

    Each message carries its tick's full spec, so workers need only their store's URLs.
    Rerun it after any interruption: batches already in gold are skipped, half-done ones
    finished. Exits 0 once every tick is in gold (with its file landed, when landing is on).
    Before writing it prints its estimate of records, bytes and time, refuses (exit 2) when
    the bytes do not fit the free space of the store's and the landing root's filesystems,
    and asks (or needs --yes) above --confirm-above records.

    \b
    Example:
      emugen backfill --from 2026-01-01T00:00:00Z --to 2026-01-02T00:00:00Z --dry-run
    """
    from emugen.backfill.budget import estimate
    from emugen.backfill.plan import parse_streams, parse_when, plan_backfill

    settings = load_settings(config_file)
    plan = plan_backfill(
        settings,
        parse_when("--from", start),
        parse_when("--to", end),
        parse_streams(streams),
        _mode(mode_name),
    )
    origin = plan.settings.clock.start
    assert origin is not None
    click.echo(
        f"backfill ({plan.start.isoformat()}, {plan.end.isoformat()}] on the simulated "
        f"clock from {origin.isoformat()}, mode {mode_name}:"
    )
    for stream, (ticks, records) in plan.counts.items():
        seqs = plan.ticks.seqs(stream)
        where = f" (seq {seqs[0]}..{seqs[-1]})" if len(seqs) else ""
        click.echo(f"  {stream.value:<9} {ticks:>9,} ticks{where}  {records:>14,} records expected")
    if dry_run:
        click.echo(estimate(plan).line())
        return
    from emugen.cli.options import store_engine

    engine = store_engine(plan.settings.model_copy(update={"database_url": settings.database_url}))
    _check_budget(plan, engine, confirmed, confirm_above)
    _run(plan, engine, settings.broker_url)


def _check_budget(
    plan,
    engine,
    confirmed: bool,  # noqa: ANN001 - Plan loads late
    confirm_above: int,
) -> None:
    """Print the estimate of what is left to write; refuse what does not fit or is unconfirmed."""
    from emugen.backfill.budget import estimate, room
    from emugen.fleet.backfill import store_state

    needs = estimate(plan, set(store_state(engine, plan)))
    click.echo(needs.line())
    space = room(plan.settings, needs)
    for note in space.notes:
        click.echo(f"  note: {note}")
    if space.short:
        raise BackfillRefused(
            f"backfill does not fit: {'; '.join(space.short)}; free space "
            "or split the range (--to earlier)"
        )
    if needs.records <= confirm_above or confirmed:
        return
    ask = f"it would write {needs.records:,} records, more than --confirm-above {confirm_above:,}"
    if not _interactive():
        raise BackfillRefused(f"backfill not started: {ask}; rerun with --yes to start it")
    if not click.confirm(f"{ask[0].upper()}{ask[1:]}. Start writing?", default=False):
        raise BackfillRefused(
            f"backfill not started: {ask} and it was not confirmed; rerun with --yes to start it"
        )


def _interactive() -> bool:
    """Whether someone at a terminal can answer the confirmation."""
    return sys.stdin.isatty()


def _run(plan, engine, broker_url: str) -> None:  # noqa: ANN001 - Plan loads late
    from celery import Celery

    from emugen.fleet.names import GENERATE_QUEUE, ROUTES

    # A sender of its own on this config's broker, routing as the fleet does: the fleet's app
    # (which a notebook or the test suite's worker may be using) keeps its broker and pool.
    sender = Celery("emugen-backfill", broker=broker_url, set_as_current=False)
    sender.conf.update(
        task_routes=ROUTES,
        task_default_queue=GENERATE_QUEUE,
        task_serializer="json",
        accept_content=["json"],
    )
    try:
        _dispatch(sender, plan, engine, broker_url)
    finally:
        sender.close()


def _dispatch(app, plan, engine, broker_url: str) -> None:  # noqa: ANN001 - loaded late
    from emugen.backfill.progress import Progress
    from emugen.fleet.backfill import Backfill, CeleryFleet, landing_errors

    try:
        app.connection_for_write().ensure_connection(max_retries=2)
    except Exception as exc:  # noqa: BLE001 - kombu raises many kinds; all mean "no broker"
        raise BrokerError(
            f"no broker answers at {broker_url} ({exc}); start Redis and the "
            "workers (`celery -A emugen worker`)"
        ) from None
    outcome = Backfill(
        engine, plan, CeleryFleet(app), plan.settings.fleet, Progress(sys.stderr)
    ).run()
    if not outcome.complete:
        problems = []
        if outcome.failed:
            problems.append(
                f"{len(outcome.failed)} failed ({', '.join(outcome.failed[:3])}"
                f"{'…' if len(outcome.failed) > 3 else ''})"
            )
        if outcome.unlanded:
            errors = landing_errors(engine, outcome.unlanded)
            problems.append(
                f"{len(outcome.unlanded)} in gold whose landing file is missing"
                f"{f' (last error: {errors[0]})' if errors else ''}; fix the "
                "landing zone"
            )
        if outcome.blocked:
            problems.append(f"{len(outcome.blocked)} blocked behind a failed company batch")
        if outcome.stalled_s is not None:
            problems.append(
                f"no tick reached gold for {outcome.stalled_s:.0f} s: are workers "
                "running (`celery -A emugen worker`) on this broker and store?"
            )
        raise BackfillIncomplete(
            f"backfill incomplete: {outcome.gold:,} of {outcome.total:,} "
            f"ticks in gold; {'; '.join(problems)}. Rerun the same "
            "command to resume"
        )
    click.echo(
        f"backfill done: {outcome.total:,} ticks in gold ({outcome.sent:,} sent this run,"
        f" {outcome.records:,} records) in {outcome.seconds:.1f} s"
    )
