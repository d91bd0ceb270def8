"""Finding, reading and validating the config file; only locations come from the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from emugen.errors import ConfigError
from emugen.settings.model import Settings
from emugen.settings.problems import problems
from emugen.settings.yaml_file import decode, parse_yaml, read_config_bytes

DEFAULT_CONFIG = Path("config/emugen.yaml")
ENV_CONFIG = "EMUGEN_CONFIG"
ENV_HOME = "EMUGEN_HOME"  # a checkout or deployment folder holding config/emugen.yaml
# Only locations and secrets come from the environment; everything that shapes data stays in
# the file, so the file alone says what a run produced (SC-004).
ENV_OVERRIDES = {"EMUGEN_DATABASE_URL": "database_url", "EMUGEN_BROKER_URL": "broker_url"}
ENV_LANDING_ROOT = "EMUGEN_LANDING_ROOT"  # landing.root
INIT_HINT = (
    "write one with `emugen init` (config/emugen.yaml here, from the emulated preset; "
    "--preset production for production volume)"
)


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use: the argument, else $EMUGEN_CONFIG, else
    $EMUGEN_HOME/config/emugen.yaml, else config/emugen.yaml under the current directory."""
    if path:
        return Path(path)
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG])
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]) / DEFAULT_CONFIG
    return DEFAULT_CONFIG


def config_origin(path: str | os.PathLike[str] | None = None) -> str:
    """Where config_path() found its answer, for messages that say where emugen looked."""
    if path:
        return "given with --config"
    if os.environ.get(ENV_CONFIG):
        return f"from ${ENV_CONFIG}"
    if os.environ.get(ENV_HOME):
        return f"from ${ENV_HOME}"
    return f"under the current directory {Path.cwd()}; set ${ENV_HOME} or pass --config"


def parse_settings(data: Any, source: str = "<data>", env: bool = True) -> Settings:
    """Validate a mapping into Settings, turning pydantic's errors into one ConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [f"the file must hold a mapping of keys, got {_kind(data)}"])
    if env:
        data = {
            **data,
            **{key: os.environ[var] for var, key in ENV_OVERRIDES.items() if os.environ.get(var)},
        }
        if os.environ.get(ENV_LANDING_ROOT) and isinstance(data.get("landing", {}), dict):
            data["landing"] = {**data.get("landing", {}), "root": os.environ[ENV_LANDING_ROOT]}
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, problems(exc)) from None


def load_settings(path: str | os.PathLike[str] | None = None, env: bool = True) -> Settings:
    """Read and validate a YAML config file (see config/ for presets)."""
    file = config_path(path)
    try:
        raw = read_config_bytes(file)
    except FileNotFoundError:
        raise ConfigError(
            str(file),
            [
                f"no such file (looked at {file.absolute()}, {config_origin(path)}); "
                f"{INIT_HINT} or pass --config"
            ],
        ) from None
    return settings_from_text(decode(raw, str(file)), str(file), env=env)


def settings_from_text(text: str, source: str, env: bool = True) -> Settings:
    """Validate the YAML text of a config file (the watcher reads once and parses this).

    A file that holds no settings is refused rather than read as "every default": the
    defaults include a database URL, and a fleet reloading an emptied file would move to it.
    """
    data = parse_yaml(text, source)
    if data is None or data == {}:
        what = "is empty" if not text.strip() else "holds no settings (only comments or {})"
        raise ConfigError(
            source,
            [
                f"the file {what}; a config names at least its mode and store: copy a preset "
                f"(e.g. cp config/emulated.yaml {source})"
            ],
        )
    return parse_settings(data, source, env=env)  # refuses a scalar or a list: not a mapping


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )
