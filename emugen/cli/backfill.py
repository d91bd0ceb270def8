"""`emugen backfill`: every tick of a range on the simulated clock, fanned out over the fleet."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from emugen.cli.options import config_option
from emugen.errors import BackfillIncomplete, BackfillInputError, BrokerError
from emugen.settings import load_settings
from emugen.vocabulary import Mode


def _mode(value: str) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        raise BackfillInputError(f"--mode {value!r} is not a mode; allowed: "
                                 f"{', '.join(m.value for m in Mode)}") from None


@click.command("backfill")
@click.option("--from", "start", required=True, metavar="TIME",
              help="Start of the range (ISO-8601 with a timezone, e.g. 2026-01-01T00:00:00Z).")
@click.option("--to", "end", required=True, metavar="TIME",
              help="End of the range: every batch whose interval ends in (--from, --to].")
@click.option("--streams", default="companies,events", show_default=True,
              help="Comma-separated streams to make.")
@click.option("--mode", "mode_name", default="production", show_default=True,
              help="Whose cadence the ticks follow: production | emulated.")
@config_option
@click.option("--dry-run", is_flag=True,
              help="Print the ticks and the expected records; touch neither broker nor store.")
def backfill_cmd(start: str, end: str, streams: str, mode_name: str,  # noqa: PLR0913
                 config_file: Path | None, dry_run: bool) -> None:
    """Make every batch of a range of simulated time on the Celery fleet, through gold.

    Each message carries its tick's full spec, so workers need only their store's URLs.
    Rerun it after any interruption: batches already in gold are skipped, half-done ones
    finished. Exits 0 once every tick is in gold (with its file landed, when landing is on).

    \b
    Example:
      emugen backfill --from 2026-01-01T00:00:00Z --to 2026-01-02T00:00:00Z --dry-run
    """
    from emugen.backfill.plan import parse_streams, parse_when, plan_backfill

    settings = load_settings(config_file)
    plan = plan_backfill(settings, parse_when("--from", start), parse_when("--to", end),
                         parse_streams(streams), _mode(mode_name))
    origin = plan.settings.clock.start
    assert origin is not None
    click.echo(f"backfill ({plan.start.isoformat()}, {plan.end.isoformat()}] on the simulated "
               f"clock from {origin.isoformat()}, mode {mode_name}:")
    for stream, (ticks, records) in plan.counts.items():
        seqs = [t.spec.seq for t in plan.ticks if t.stream is stream]
        where = f" (seq {seqs[0]}..{seqs[-1]})" if seqs else ""
        click.echo(f"  {stream.value:<9} {ticks:>9,} ticks{where}  {records:>14,} records "
                   "expected")
    if dry_run:
        return
    if config_file is not None:  # the Celery app reads its broker from the same file
        os.environ["EMUGEN_CONFIG"] = str(config_file)
    _run(plan, settings.broker_url, settings.database_url)


def _run(plan, broker_url: str, database_url: str) -> None:  # noqa: ANN001 - Plan loads late
    from emugen.backfill.progress import Progress
    from emugen.celery import app
    from emugen.cli.options import store_engine
    from emugen.fleet.backfill import Backfill, CeleryFleet, landing_errors

    app.conf.broker_url = broker_url  # this config's broker, not the default one
    try:
        app.connection_for_write().ensure_connection(max_retries=2)
    except Exception as exc:  # noqa: BLE001 - kombu raises many kinds; all mean "no broker"
        raise BrokerError(f"no broker answers at {broker_url} ({exc}); start Redis and the "
                          "workers (`celery -A emugen worker`)") from None
    engine = store_engine(plan.settings.model_copy(update={"database_url": database_url}))
    outcome = Backfill(engine, plan, CeleryFleet(app), plan.settings.fleet,
                       Progress(sys.stderr)).run()
    if not outcome.complete:
        problems = []
        if outcome.failed:
            problems.append(f"{len(outcome.failed)} failed ({', '.join(outcome.failed[:3])}"
                            f"{'…' if len(outcome.failed) > 3 else ''})")
        if outcome.unlanded:
            errors = landing_errors(engine, outcome.unlanded)
            problems.append(f"{len(outcome.unlanded)} in gold whose landing file is missing"
                            f"{f' (last error: {errors[0]})' if errors else ''}; fix the "
                            "landing zone")
        if outcome.blocked:
            problems.append(f"{len(outcome.blocked)} blocked behind a failed company batch")
        if outcome.stalled_s is not None:
            problems.append(f"no tick reached gold for {outcome.stalled_s:.0f} s: are workers "
                            "running (`celery -A emugen worker`) on this broker and store?")
        raise BackfillIncomplete(f"backfill incomplete: {outcome.gold:,} of {outcome.total:,} "
                                 f"ticks in gold; {'; '.join(problems)}. Rerun the same "
                                 "command to resume")
    click.echo(f"backfill done: {outcome.total:,} ticks in gold ({outcome.sent:,} sent this run,"
               f" {outcome.records:,} records) in {outcome.seconds:.1f} s")
