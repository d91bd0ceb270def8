"""The config file as it changes: a watcher that re-validates each edit, and atomic rewrites."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from emugen.errors import ConfigError, StoreUnknown
from emugen.files.atomic import replace_atomically
from emugen.fleet.applied import Standing, fallback
from emugen.fleet.broker import redact_url
from emugen.settings import Settings, config_path, settings_from_text
from emugen.settings.yaml_file import decode, parse_yaml, read_config_bytes, refusal
from emugen.vocabulary import Mode

logger = logging.getLogger("emugen.reload")
RESTART = "restart to switch stores"


def store_moves(running: Settings, new: Settings) -> list[str]:
    """One line per store location `new` changes: the database, the broker, the landing root.

    These are never hot-applied. Moving them under a running fleet splits its data (seqs
    restart in the new store, in-flight batches finish in the old one), so a change waits for
    a restart, which every process of the fleet then takes at once.
    """
    pairs = (
        ("database_url", redact_url(running.database_url), redact_url(new.database_url)),
        ("broker_url", redact_url(running.broker_url), redact_url(new.broker_url)),
        ("landing.root", running.landing.root, new.landing.root),
    )
    return [
        f"{name}: {old} -> {to} is not applied while the fleet runs on {old}; {RESTART}"
        for name, old, to in pairs
        if old != to
    ]


@dataclass(frozen=True)
class Change:
    """One new version of the file: the settings it gives, or why it was rejected."""

    source: str
    settings: Settings | None
    error: ConfigError | None

    @property
    def accepted(self) -> bool:
        return self.settings is not None


class ConfigWatcher:
    """Re-reads the file on every poll and reports a change only when its bytes differ.

    Reading a small file once a second is cheaper than reasoning about mtime resolution,
    editors that write in place, and clocks that jump. A rejected version leaves `settings`
    (the running config) untouched; so does a valid one that moves a store (`store_moves`).
    `running` is the config already in force when the watcher starts (a forked worker's
    parent's, the dashboard's): its stores hold from the first poll on.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        env: bool = True,
        running: Settings | None = None,
    ) -> None:
        self.path = config_path(path)
        self.env = env
        self.settings: Settings | None = running
        self.last_error: ConfigError | None = None
        self._digest: str | None = None

    def poll(self) -> Change | None:
        try:
            info = os.stat(self.path)
        except OSError as exc:
            return self._refuse(f"unreadable:{exc.errno}", f"cannot read the file ({exc.strerror})")
        problem = refusal(info)
        if problem:
            # never opened: a device or a huge file costs one stat per poll, however often
            return self._refuse(
                f"refused:{info.st_ino}:{info.st_mode}:{info.st_size}:{info.st_mtime_ns}", problem
            )
        try:
            raw = read_config_bytes(self.path)
        except FileNotFoundError:
            return self._refuse("unreadable:missing", "cannot read the file (it vanished)")
        except ConfigError as exc:  # swapped for something else between stat and open
            return self._refuse(f"refused:{exc.problems}", "; ".join(exc.problems))
        digest = hashlib.sha256(raw).hexdigest()
        if digest == self._digest:
            return None
        self._digest = digest
        try:
            settings = settings_from_text(decode(raw, str(self.path)), str(self.path), env=self.env)
        except ConfigError as exc:
            return self._reject(exc)
        moves = store_moves(self.settings, settings) if self.settings is not None else []
        if moves:
            return self._reject(ConfigError(str(self.path), moves))
        self.settings, self.last_error = settings, None
        return Change(str(self.path), settings, None)

    def fall_back(self, problem: ConfigError) -> Standing:
        """Stand on the store's last applied config while the file is invalid.

        A typo must not keep a worker or beat down while the fleet carries on; with no applied
        config in the store there is nothing to stand on, so `problem` is raised.
        """
        try:
            found = fallback(self.path, problem)
        except StoreUnknown:
            raise problem from None
        if not found.from_store:
            raise problem
        logger.warning("%s", found.warning())
        self.settings = found.settings  # until the file is fixed: the next valid edit wins
        return found

    def current(self) -> Settings:
        """The config in force: the file's latest valid version, else the store's last applied."""
        change = self.poll()
        if change is not None and not change.accepted:
            logger.warning("config rejected, keeping the running one: %s", change.error)
        if self.settings is None:
            self.fall_back(self.last_error or ConfigError(str(self.path), ["no config loaded"]))
        assert self.settings is not None
        return self.settings

    def _refuse(self, digest: str, problem: str) -> Change | None:
        if digest == self._digest:
            return None
        self._digest = digest
        return self._reject(
            ConfigError(str(self.path), [f"{problem}; the running config stays in force"])
        )

    def _reject(self, error: ConfigError) -> Change:
        self.last_error = error
        return Change(str(self.path), None, error)


_MODE_LINE = re.compile(r"^mode:[ \t]*[^\s#]*", re.MULTILINE)


def write_atomically(path: Path, text: str) -> None:
    """Write then rename: a reader sees the old file or the new one, never half of one."""
    mode = path.stat().st_mode & 0o777 if path.exists() else None
    replace_atomically(path, text.encode("utf-8"), mode)


def set_mode(
    mode: Mode | str, path: str | os.PathLike[str] | None = None
) -> tuple[Mode | None, Mode]:
    """Rewrite the file's top-level `mode:` (comments kept); returns (before, after).

    `before` is None when the file was invalid: a broken mode line is exactly what this
    repairs. The new text is validated before it replaces the file, so this never writes a
    config the fleet would reject (another broken line is reported, and the file left alone).
    """
    file = config_path(path)
    try:
        target = Mode(mode)
    except ValueError:
        raise ConfigError(
            str(file), [f"mode: got {mode!r}; allowed: {', '.join(m.value for m in Mode)}"]
        ) from None
    if not file.exists():  # a mode is a line of a config: there must be a config to hold it
        raise ConfigError(
            str(file),
            [
                f"no such file (looked at {file.absolute()}); write one with `emugen init "
                f"--preset {target.value}`, or pass --config"
            ],
        )
    text = decode(read_config_bytes(file), str(file))
    if _holds_nothing(text, str(file)):
        raise ConfigError(
            str(file),
            [
                "the file holds no settings, and a mode line alone would put every other setting "
                "(the store included) at its default: write one with `emugen init --preset "
                f"{target.value} --force`, then set the mode"
            ],
        )
    try:
        before: Mode | None = settings_from_text(text, str(file), env=False).mode
    except ConfigError:
        before = None
    if _MODE_LINE.search(text):
        updated = _MODE_LINE.sub(f"mode: {target.value}", text, count=1)
    else:
        updated = f"mode: {target.value}\n{text}"
    settings_from_text(updated, str(file), env=False)
    if updated != text:
        write_atomically(file, updated)
    return before, target


def _holds_nothing(text: str, source: str) -> bool:
    try:
        return parse_yaml(text, source) in (None, {})
    except ConfigError:
        return False  # broken YAML: validating the rewritten text reports it


def write_yaml_atomically(path: Path, data: dict[str, Any]) -> None:
    """`data` as YAML in key order, written by `write_atomically` (the one atomic YAML writer)."""
    write_atomically(path, yaml.safe_dump(data, sort_keys=False))
