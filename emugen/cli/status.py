"""`emugen status` and `emugen replay`: reading what the store holds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from emugen.cli.options import config_option, store_engine, store_settings
from emugen.settings import load_settings


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--latest",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="How many of the newest batches to list.",
)
@config_option
def status_cmd(as_json: bool, latest: int, config_file: Path | None) -> None:
    """Counts per layer, quarantine by reason, reconciliation, the latest batches.

    \b
    Examples:
      emugen status
      emugen status --json --latest 20
    """
    from emugen.db.session import read_session
    from emugen.fleet.beat_lease import read_lease
    from emugen.fleet.broker import redact_url
    from emugen.fleet.due import read_quietly
    from emugen.fleet.outage import client_for, refusals
    from emugen.status.report import format_status, status
    from emugen.status.store import store_state

    settings = store_settings(config_file)
    client = client_for(settings.broker_url)
    running, note = read_lease(client)
    beat = (running, f"{note} {redact_url(settings.broker_url)}" if running is False else note)
    with refusals("read the status", settings.database_url):
        engine = store_engine(settings)
        with read_session(engine) as session:
            report = status(
                session, latest, store_state(engine, client), read_quietly(client), beat
            )
    click.echo(json.dumps(report, indent=2) if as_json else format_status(report))


@click.command("replay")
@click.argument("batch_id")
@config_option
def replay_cmd(batch_id: str, config_file: Path | None) -> None:
    """Regenerate BATCH_ID from its stored spec; exit 0 if bronze is identical, 1 if not.

    \b
    Example:
      emugen replay events-000000042
    """
    from emugen.db.session import read_session
    from emugen.pipeline.replay import replay

    settings = load_settings(config_file)
    with read_session(store_engine(settings)) as session:
        report = replay(session, batch_id)
    click.echo(report.summary())
    if not report.identical:
        sys.exit(1)
