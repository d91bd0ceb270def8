"""`emugen config check | schema`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from emugen.settings import Settings, config_path, load_settings
from emugen.vocabulary import Stream


@click.group("config")
def config_group() -> None:
    """Check a config file, or print its JSON Schema.

    \b
    Example:
      emugen config check config/production.yaml
    """


@config_group.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def config_check(path: Path | None) -> None:
    """Validate PATH (default: the active config); exit 0 when valid, 2 with the problems.

    \b
    Example:
      emugen config check config/production.yaml
    """
    file = config_path(path)
    settings = load_settings(path, env=False)
    # A forgotten seed still gives reproducible data, but not the data the user may think of.
    seed = (
        f"seed {settings.seed}"
        if "seed" in settings.model_fields_set
        else f"seed {settings.seed} (the default: the file sets no seed)"
    )
    click.echo(
        f"{file}: valid (mode {settings.mode.value}, {seed}, "
        f"companies every {settings.interval(Stream.companies).total_seconds():g} s, "
        f"events every {settings.interval(Stream.events).total_seconds():g} s, "
        f"fingerprint {settings.fingerprint()})"
    )


@config_group.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of the config file (point your editor's YAML plugin at it).

    \b
    Example:
      emugen config schema > emugen.schema.json
    """
    click.echo(json.dumps(Settings.model_json_schema(mode="validation"), indent=2))
