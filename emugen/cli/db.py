"""`emugen db init`."""

from __future__ import annotations

from pathlib import Path

import click

from emugen.cli.options import config_option, store_engine
from emugen.fleet.broker import redact_url
from emugen.settings import load_settings


@click.group("db")
def db_group() -> None:
    """Database housekeeping.

    \b
    Example:
      emugen db init
    """


@db_group.command("init")
@config_option
def db_init(config_file: Path | None) -> None:
    """Create the tables (safe to run again).

    \b
    Example:
      emugen db init --config config/emugen.yaml
    """
    settings = load_settings(config_file)
    store_engine(settings)
    click.echo(f"database ready: {redact_url(settings.database_url)}")
