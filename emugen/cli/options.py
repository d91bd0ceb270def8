"""Options and helpers shared by the command groups: --config, ISO times, the store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from emugen.settings import Settings

config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file (default: $EMUGEN_CONFIG or config/emugen.yaml).",
)


def iso(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO-8601 time; use e.g. 2026-01-01T00:00:00Z"
        ) from None


def store_settings(config_file: Path | None) -> Settings:
    """Settings for commands that only read or control the store: with an invalid file they
    run on the store's last applied config, and say so (the fleet does the same)."""
    from emugen.fleet.applied import standing

    found = standing(config_file)
    warning = found.warning()
    if warning:
        click.echo(f"emugen: {warning}", err=True)
    return found.settings


def store_engine(settings: Settings):  # noqa: ANN202
    from emugen.db.session import engine_for, init_db

    engine = engine_for(settings.database_url)
    init_db(engine)
    return engine
