"""The last applied config: what store commands and a worker stand on while the file is invalid.

Two records: the config itself, in the store (beat writes it on every accepted reload), and
the store's whereabouts, in a small file beside the config (beat and each worker write it when
they start), since a store cannot say where it is. Under an invalid or missing file, store
commands open the recorded store, never the default one nobody runs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session

from emugen.db.models import ControlState
from emugen.errors import ConfigError, StoreUnknown
from emugen.files.atomic import replace_atomically
from emugen.fleet.broker import redact_url
from emugen.settings import ENV_LANDING_ROOT, ENV_OVERRIDES, Settings, config_path, load_settings
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
        return Settings.model_validate(
            {**data, "database_url": database_url, "broker_url": broker_url}
        )
    except (ValueError, ValidationError):  # written by another emugen version: not usable
        logger.warning("the store's last applied config does not validate; ignoring it")
        return None


def store_record_path(config: str | os.PathLike[str] | None = None) -> Path:
    """Where the fleet running on this config file records its store: a dot-file beside it."""
    file = config_path(config)
    return file.with_name(f".{file.name}.running.json")


def record_store(config: str | os.PathLike[str] | None, settings: Settings, by: str) -> None:
    """Write down the store, broker and landing root a fleet process starts on (owner-only:
    the URLs may carry passwords). Failing to write is a warning: the fleet runs regardless.
    With every location from the environment (containers) there is nothing to record."""
    if all(os.environ.get(var) for var in [*ENV_OVERRIDES, ENV_LANDING_ROOT]):
        return
    record = {
        "database_url": _absolute(settings.database_url),
        "broker_url": settings.broker_url,
        "landing_root": settings.landing.root,
        "by": by,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = store_record_path(config)
    try:
        replace_atomically(path, json.dumps(record, indent=1).encode("utf-8"), 0o600)
    except OSError as exc:
        logger.warning(
            "could not record the store in %s (%s); store commands run under an "
            "invalid config file will not find it",
            path,
            exc.strerror,
        )


def recorded_store(config: str | os.PathLike[str] | None = None) -> dict[str, str] | None:
    """The store the fleet on this config file last started on, or None when none recorded."""
    try:
        data = json.loads(read_config_bytes(store_record_path(config)))
    except (OSError, ConfigError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("database_url"), str):
        return None
    return {k: str(v) for k, v in data.items()}


def _absolute(url: str) -> str:
    """A relative SQLite path made absolute, so the record holds wherever it is read from."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    database = parsed.database
    if (
        not parsed.drivername.startswith("sqlite")
        or not database
        or database == ":memory:"
        or database.startswith("file:")
        or os.path.isabs(database)
    ):
        return url
    return parsed.set(database=os.path.abspath(database)).render_as_string(hide_password=False)


def lenient_urls(path: str | os.PathLike[str] | None = None) -> tuple[dict[str, str], str | None]:
    """database_url and broker_url for an invalid file, and where the store's came from.

    Each comes from its environment variable, else the record of the fleet running on this
    file, else the file's own line if it can be read at all (the rest may be broken), else the
    default. The origin is None when the store's URL is only the default: nobody runs on it.
    """
    found: dict[str, str] = {}
    origin: dict[str, str | None] = {}
    record = recorded_store(path) or {}
    file_values = _file_urls(config_path(path))
    for var, key in ENV_OVERRIDES.items():
        if os.environ.get(var):
            found[key], origin[key] = os.environ[var], f"${var}"
        elif record.get(key):
            found[key] = record[key]
            origin[key] = (
                f"{store_record_path(path)}, written by {record.get('by', '?')} "
                f"pid {record.get('pid', '?')} at {record.get('at', '?')}"
            )
        elif file_values.get(key):
            found[key], origin[key] = file_values[key], "the file"
        else:
            found[key], origin[key] = str(Settings.model_fields[key].default), None
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
    note: str | None = None  # a valid file naming stores the fleet has not restarted onto

    def warning(self) -> str | None:
        if self.problem is None:
            return self.note
        why = "; ".join(self.problem.problems)
        where = f"the store at {redact_url(self.settings.database_url)} (from {self.url_origin})"
        if self.from_store:
            running = (
                f"its last applied config (mode {self.settings.mode.value}, "
                f"fingerprint {self.settings.fingerprint()})"
            )
        else:
            running = "no config applied there yet (defaults)"
        return (
            f"warning: {self.problem.source} is invalid ({why}); the fleet keeps its last "
            f"good config. Using {where} with {running}. Fix the file, or run "
            "`emugen mode emulated|production` if only the mode line is wrong."
        )


def standing(path: str | os.PathLike[str] | None = None) -> Standing:
    """The file's settings, or, while it is invalid or missing, the store's last applied ones."""
    try:
        settings = load_settings(path)
    except ConfigError as problem:
        return fallback(path, problem)
    return _on_running_stores(path, settings)


def _on_running_stores(path: str | os.PathLike[str] | None, settings: Settings) -> Standing:
    """A valid file that names other stores than the fleet on it started on (an edit it has
    refused until a restart): the fleet's stores, so `pause` pauses the fleet that runs, and a
    note. A store given by an environment variable is the caller's choice and is kept."""
    record = recorded_store(path) or {}
    current = {
        "database_url": _absolute(settings.database_url),
        "broker_url": settings.broker_url,
        "landing_root": settings.landing.root,
    }
    taken = {**ENV_OVERRIDES, ENV_LANDING_ROOT: "landing_root"}
    moved = {
        key: record[key]
        for var, key in taken.items()
        if not os.environ.get(var) and record.get(key) and record[key] != current[key]
    }
    if not moved:
        return Standing(settings)
    landing = settings.landing.model_copy(
        update={"root": moved.get("landing_root", settings.landing.root)}
    )
    running = settings.model_copy(
        update={
            "database_url": moved.get("database_url", settings.database_url),
            "broker_url": moved.get("broker_url", settings.broker_url),
            "landing": landing,
        }
    )
    names = ", ".join(f"{key} {_shown(current[key])}" for key in moved)
    using = ", ".join(f"{key} {_shown(value)}" for key, value in moved.items())
    return Standing(
        running,
        note=(
            f"note: {config_path(path)} names {names}, which the fleet takes when it restarts; "
            f"using the stores it started on ({using}, recorded in {store_record_path(path)})"
        ),
    )


def _shown(value: str) -> str:
    return redact_url(value) if "://" in value else value


def fallback(path: str | os.PathLike[str] | None, problem: ConfigError) -> Standing:
    """The store the fleet runs on, with its last applied config; StoreUnknown when no
    variable, record or line of the file says where that store is."""
    from emugen.db.session import engine_for, init_db, read_session

    urls, origin = lenient_urls(path)
    if origin is None:
        raise StoreUnknown(
            f"{problem.source}: {_first(problem)}; and no fleet has recorded the store it runs "
            f"on ({store_record_path(path)} is absent), so there is no store to open: fix the "
            "file, or set $EMUGEN_DATABASE_URL to the store"
        )
    engine = engine_for(urls["database_url"])
    init_db(engine)
    with read_session(engine) as session:
        applied = applied_settings(session, urls["database_url"], urls["broker_url"])
    settings = applied or Settings.model_validate(urls)
    return Standing(settings, problem, from_store=applied is not None, url_origin=origin)


def _first(problem: ConfigError) -> str:
    more = len(problem.problems) - 1
    return (problem.problems[0] if problem.problems else "invalid") + (
        f" (and {more} more)" if more > 0 else ""
    )
