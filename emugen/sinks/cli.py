"""`emugen land verify|repair`: check or restore the landing zone against the store."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from emugen.errors import LandingError


def _open(config_file: Path | None):  # noqa: ANN202 - (settings, engine)
    from emugen.db.session import engine_for, init_db
    from emugen.settings import load_settings

    settings = load_settings(config_file)
    engine = engine_for(settings.database_url)
    init_db(engine)
    return settings, engine


config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file (default: $EMUGEN_CONFIG or config/emugen.yaml).",
)


@click.group("land")
def land_group() -> None:
    """The landing zone: every batch in bronze as a file under landing.root.

    \b
    Example:
      emugen land verify
    """


SHOWN = 50  # problems listed before "... and N more"


def _report(found: object, root: str) -> None:
    from emugen.sinks.audit import Audit

    assert isinstance(found, Audit)
    for problem in found.problems[:SHOWN]:
        click.echo(f"  {problem}")
    if len(found.problems) > SHOWN:
        click.echo(f"  ... and {len(found.problems) - SHOWN} more")
    verdict = (
        "OK"
        if found.ok
        else (f"{len(found.problems)} PROBLEM(S) in {len(found.damaged)} batch(es)")
    )
    click.echo(f"landing zone {root}: {found.checked} batches checked, {verdict}")


@land_group.command("verify")
@config_option
def verify_cmd(config_file: Path | None) -> None:
    """Check every batch's data file (exists, size, sha256) and manifest (exists, parses, and
    is exactly what was landed); list every problem; exit 1 when there is any.

    Example: emugen land verify --config config/emugen.yaml
    """
    from emugen.sinks.audit import verify

    settings, engine = _open(config_file)
    found = verify(engine, settings.landing)
    _report(found, settings.landing.root)
    sys.exit(0 if found.ok else 1)


@land_group.command("repair")
@config_option
def repair_cmd(config_file: Path | None) -> None:
    """Land again, from bronze, every batch whose file or manifest is missing, damaged or
    changed (the same bytes and manifest as first landed), then verify; exit 1 when a problem
    remains.

    Example: emugen land repair
    """
    from emugen.sinks.audit import verify
    from emugen.sinks.relander import reland

    settings, engine = _open(config_file)
    if not settings.landing.enabled:
        raise LandingError(
            "the landing zone is off (landing.enabled: false); turn it on to repair it"
        )
    damaged = verify(engine, settings.landing).damaged
    done = reland(engine, settings.landing, damaged)
    click.echo(
        f"landed {len(done.landed)} of {len(damaged)} damaged or missing batch(es) "
        f"again into {settings.landing.root}"
    )
    for batch_id in done.changed:
        click.echo(
            f"  {batch_id}: bronze no longer gives the bytes first landed; landed what "
            f"bronze holds now (check it with `emugen replay {batch_id}`)",
            err=True,
        )
    after = verify(engine, settings.landing)
    _report(after, settings.landing.root)
    sys.exit(0 if after.ok and not done.changed else 1)
