"""`emugen init`: a commented config from a packaged preset, and what to run next."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from emugen.settings.presets import DEFAULT_PRESET, preset_names, write_config


@click.command("init")
@click.argument(
    "folder", required=False, default=".", type=click.Path(file_okay=False, path_type=Path)
)
@click.option(
    "--preset",
    type=click.Choice(preset_names()),
    default=DEFAULT_PRESET,
    show_default=True,
    help="Which packaged preset the config starts from.",
)
@click.option("--force", is_flag=True, help="Overwrite a config/emugen.yaml already there.")
def init_cmd(folder: Path, preset: str, force: bool) -> None:
    """Write FOLDER/config/emugen.yaml (default: here) from a preset, with its comments.

    \b
    Example:
      emugen init && emugen up
    """
    target = write_config(folder, preset, force)
    click.echo(f"wrote {target} (the {preset} preset; every key is commented)")
    click.echo("next:")
    if folder.resolve() != Path.cwd():
        click.echo(f"  cd {shlex.quote(str(folder))}")
    click.echo("  emugen up              the whole fleet with its dashboard (Ctrl-C stops it)")
    click.echo("  emugen pipeline run    or: one batch of each stream in this process, no broker")
    click.echo("  emugen status          what the store holds")
