"""`emugen pause | resume | clean | mode`: fleet control through the store and the file."""

from __future__ import annotations

from pathlib import Path

import click

from emugen.cli.options import config_option, store_engine, store_settings
from emugen.fleet.broker import redact_url
from emugen.settings import Settings, config_path
from emugen.vocabulary import Mode

# -- fleet control: state lives in the database, so every process (beat, workers) sees it ----


@click.command("pause")
@config_option
def pause_cmd(config_file: Path | None) -> None:
    """Stop new batches (beat records each tick as skipped); in-flight ones finish.

    \b
    Example:
      emugen pause
    """
    click.echo("paused" if _set_paused(config_file, True) else "already paused")


@click.command("resume")
@config_option
def resume_cmd(config_file: Path | None) -> None:
    """Start generating again; seqs continue where they stopped.

    \b
    Example:
      emugen resume
    """
    click.echo("resumed" if _set_paused(config_file, False) else "already running")


def _set_paused(config_file: Path | None, paused: bool) -> bool:
    from emugen.db.session import write_session
    from emugen.fleet.announce import announce
    from emugen.fleet.control import set_paused
    from emugen.fleet.outage import refusals

    settings = store_settings(config_file)
    with (
        refusals("pause the fleet" if paused else "resume the fleet", settings.database_url),
        write_session(store_engine(settings)) as session,
    ):
        changed = set_paused(session, paused)
    if changed:  # committed: the dashboard shows it now rather than at its next poll
        announce(settings.broker_url, "control", "paused" if paused else "resumed")
    return changed


@click.command("clean")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@config_option
def clean_cmd(yes: bool, config_file: Path | None) -> None:
    """Wipe every layer, the truth and the counters (only while paused).

    \b
    Example:
      emugen pause && emugen clean --yes
    """
    from emugen.db.session import read_session, write_session
    from emugen.fleet.control import clean, require_paused

    settings = store_settings(config_file)
    engine = store_engine(settings)
    with read_session(engine) as session:
        require_paused(session)  # before asking: a running fleet is never offered a wipe
    if not yes:
        click.confirm(
            f"wipe every batch and layer in {redact_url(settings.database_url)}?", abort=True
        )
    from emugen.fleet.announce import announce

    with write_session(engine) as session:
        cleaned = clean(session, settings.landing)
    announce(settings.broker_url, "control", "cleaned")
    purged = _purge_queues(settings)
    click.echo(f"{cleaned}{purged}")


def _purge_queues(settings: Settings) -> str:
    """Drop queued messages for the wiped batches; a broker that is down is not an error."""
    try:
        from kombu import Connection

        from emugen.fleet.backpressure import purge_queues

        with Connection(settings.broker_url, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
            count = purge_queues(connection.default_channel.client)
        return f", {count:,} queued messages"
    except Exception as exc:  # noqa: BLE001 - the wipe itself already succeeded
        # kombu's messages can quote the URL it was given, password included
        text = str(exc).replace(settings.broker_url, redact_url(settings.broker_url))
        return f" (broker queues not purged from {redact_url(settings.broker_url)}: {text})"


@click.command("mode")
@click.argument("mode", type=click.Choice([m.value for m in Mode]))
@config_option
def mode_cmd(mode: str, config_file: Path | None) -> None:
    """Switch the config file to MODE (atomic rewrite; beat applies it within a second).

    \b
    Example:
      emugen mode production
    """
    from emugen.fleet.reload import set_mode

    before, after = set_mode(mode, config_file)
    path = config_path(config_file)
    if before is after:
        click.echo(f"{path}: already {after.value}")
    elif before is None:
        click.echo(f"{path}: mode line repaired -> {after.value}")
    else:
        click.echo(f"{path}: mode {before.value} -> {after.value}")
