"""`emugen land verify|repair`: check or restore the landing zone against the store."""

from __future__ import annotations

import sys
from pathlib import Path

import click


def _open(config_file: Path | None):  # noqa: ANN202 - (settings, engine)
    from emugen.db.session import engine_for, init_db
    from emugen.settings import load_settings

    settings = load_settings(config_file)
    engine = engine_for(settings.database_url)
    init_db(engine)
    return settings, engine


config_option = click.option(
    "--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Config file (default: $EMUGEN_CONFIG or config/emugen.yaml).")


@click.group("land")
def land_group() -> None:
    """The landing zone: every batch in bronze as a file under landing.root."""


@land_group.command("verify")
@config_option
def verify_cmd(config_file: Path | None) -> None:
    """Every batch has its file and manifest with the sha256 recorded; exit 1 when not."""
    from emugen.sinks.lander import verify

    settings, engine = _open(config_file)
    result = verify(engine, settings.landing)
    for problem in result.problems[:50]:
        click.echo(f"  {problem}")
    more = len(result.problems) - 50
    if more > 0:
        click.echo(f"  ... and {more} more")
    verdict = "OK" if result.ok else f"{len(result.problems)} PROBLEM(S)"
    click.echo(f"landing zone {settings.landing.root}: {result.checked} batches checked, "
               f"{verdict}")
    sys.exit(0 if result.ok else 1)


@land_group.command("repair")
@config_option
def repair_cmd(config_file: Path | None) -> None:
    """Land now every batch that has no file (what the reaper does on its next run)."""
    from datetime import timedelta

    from emugen.sinks.lander import landing_health, reland_missing

    settings, engine = _open(config_file)
    if not settings.landing.enabled:
        raise click.UsageError("the landing zone is off (landing.enabled: false)")
    done = reland_missing(engine, settings.landing, timedelta(0), budget_s=3600)
    from emugen.db.session import read_session

    with read_session(engine) as session:
        health = landing_health(session)
    click.echo(f"landed {len(done)} batch(es) into {settings.landing.root}")
    if health["last_error"] is not None:
        click.echo(f"still not landed: {health['failing_batches']} batch(es); last error: "
                   f"{health['last_error']['error']}", err=True)
        sys.exit(1)
