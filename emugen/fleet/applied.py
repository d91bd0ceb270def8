"""The last applied config: what store commands and a worker stand on while the file is invalid."""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.orm import Session

from emugen.db.models import ControlState
from emugen.errors import ConfigError
from emugen.fleet.broker import redact_url
from emugen.settings import ENV_OVERRIDES, Settings, config_path, load_settings
from emugen.settings.yaml_file import decode, parse_yaml, read_config_bytes

logger = logging.getLogger("emugen.applied")
APPLIED = "applied_config"  # the control_state key beat writes on every accepted reload
_URL_FIELDS = {"database_url", "broker_url"}
_URL_LINE = re.compile(r"^(database_url|broker_url):[ \t]*['\"]?([^'\"\s#]+)", re.MULTILINE)


def record_applied(session: Session, settings: Settings) -> None:
    """Remember the config beat just applied. URLs stay out: they locate the store (so they
    must come from outside it) and may carry passwords."""
    value = json.dumps(settings.model_dump(mode="json", exclude=_URL_FIELDS), sort_keys=True)
    row = session.get(ControlState, APPLIED)
    if row is None:
        session.add(ControlState(key=APPLIED, value=value, updated_at=datetime.now(UTC)))
    elif row.value != value:
        row.value, row.updated_at = value, datetime.now(UTC)


def applied_settings(session: Session, database_url: str, broker_url: str) -> Settings | None:
    """The last applied config with these URLs, or None when beat never applied one here."""
    row = session.get(ControlState, APPLIED)
    if row is None:
        return None
    try:
        data = json.loads(row.value)
        return Settings.model_validate({**data, "database_url": database_url,
                                        "broker_url": broker_url})
    except (ValueError, ValidationError):  # written by another emugen version: not usable
        logger.warning("the store's last applied config does not validate; ignoring it")
        return None


def lenient_urls(path: str | os.PathLike[str] | None = None) -> tuple[dict[str, str], str]:
    """database_url and broker_url for an invalid file, and where they came from.

    Each comes from its environment variable, else the file's own line if it can be read at
    all (the rest of the file may be broken), else the default: the same precedence a valid
    file gets, so the store found is the one the fleet uses.
    """
    found: dict[str, str] = {}
    origin: dict[str, str] = {}
    file_values = _file_urls(config_path(path))
    for var, key in ENV_OVERRIDES.items():
        if os.environ.get(var):
            found[key], origin[key] = os.environ[var], f"${var}"
        elif file_values.get(key):
            found[key], origin[key] = file_values[key], "the file"
        else:
            found[key] = str(Settings.model_fields[key].default)
            origin[key] = "the default"
    return found, origin["database_url"]


def _file_urls(file: Path) -> dict[str, str]:
    try:
        text = decode(read_config_bytes(file), str(file))
    except (OSError, ConfigError):
        return {}
    try:
        data = parse_yaml(text, str(file))
    except ConfigError:
        data = None
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if k in _URL_FIELDS and isinstance(v, str) and v}
    return {m[1]: m[2] for m in _URL_LINE.finditer(text)}  # YAML broken: the lines themselves


@dataclass(frozen=True)
class Standing:
    """The settings a store command runs on, and the file's problem when they are not its own."""

    settings: Settings
    problem: ConfigError | None = None
    from_store: bool = False
    url_origin: str = "the file"

    def warning(self) -> str | None:
        if self.problem is None:
            return None
        why = "; ".join(self.problem.problems)
        where = f"the store at {redact_url(self.settings.database_url)} (from {self.url_origin})"
        if self.from_store:
            running = (f"its last applied config (mode {self.settings.mode.value}, "
                       f"fingerprint {self.settings.fingerprint()})")
        else:
            running = "no config applied there yet (defaults)"
        return (f"warning: {self.problem.source} is invalid ({why}); the fleet keeps its last "
                f"good config. Using {where} with {running}. Fix the file, or run "
                "`emugen mode emulated|production` if only the mode line is wrong.")


def standing(path: str | os.PathLike[str] | None = None) -> Standing:
    """The file's settings, or, while it is invalid, the store's last applied ones."""
    try:
        return Standing(load_settings(path))
    except ConfigError as problem:
        if problem.problems and problem.problems[0].startswith("no such file"):
            raise  # nothing to fall back on: the store's location is unknown too
        return fallback(path, problem)


def fallback(path: str | os.PathLike[str] | None, problem: ConfigError) -> Standing:
    from emugen.db.session import engine_for, init_db, read_session

    urls, origin = lenient_urls(path)
    engine = engine_for(urls["database_url"])
    init_db(engine)
    with read_session(engine) as session:
        applied = applied_settings(session, urls["database_url"], urls["broker_url"])
    settings = applied or Settings.model_validate(urls)
    return Standing(settings, problem, from_store=applied is not None, url_origin=origin)
