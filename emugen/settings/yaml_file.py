"""Reading a config file defensively: small regular files only, YAML without aliases or bulk."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from emugen.errors import ConfigError, YamlShapeError

# A real config is a few KB. Every bound below is checked before the expensive step it guards,
# so a hostile file (a device, a huge file, an alias bomb) is refused in about a millisecond:
# beat and the dashboard poll the file every second and must never stall or grow on it.
MAX_CONFIG_BYTES = 1 << 20
MAX_NODES = 2_000  # YAML scalars, lists and mappings; the whole Settings tree has ~100
MAX_DEPTH = 16  # the Settings tree is 4 levels deep
_KINDS = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a named pipe",
    stat.S_IFSOCK: "a socket",
}
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """The safe loader, refusing a key given twice in one mapping (YAML would keep the last).

    A repeated `seed:` or `database_url:` silently overriding the first is how an edit meant
    for one place lands in another; the error names the key, its path and both lines.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        where = _paths(self).pop(id(node), "")
        first: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            name = f"{where}.{key}" if where else str(key)
            try:
                earlier = first.get(key)
            except TypeError:  # an unhashable key: the base constructor names it
                break
            if earlier is not None:
                raise YamlShapeError(
                    f"duplicate key {name!r} at line {earlier} and again at line {line}; "
                    "YAML would silently keep the last one: keep one of them"
                )
            first[key] = line
            _name_children(self, value_node, name)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def _paths(loader: Any) -> dict[int, str]:
    """The dotted path of each mapping node still to be built (for duplicate-key messages)."""
    if not hasattr(loader, "_emugen_paths"):
        loader._emugen_paths = {}
    return loader._emugen_paths  # type: ignore[no-any-return]


def _name_children(loader: Any, node: yaml.Node, name: str) -> None:
    if isinstance(node, yaml.MappingNode):
        _paths(loader)[id(node)] = name
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _name_children(loader, item, f"{name}[{index}]")


def refusal(info: os.stat_result) -> str | None:
    """Why a file with this stat must not be read at all, or None when it may be."""
    if not stat.S_ISREG(info.st_mode):
        kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
        return (
            f"cannot read the file: it is {kind}, not a regular file; point the config "
            "at a YAML file "
            "(`emugen init` writes config/emugen.yaml from a preset)"
        )
    if info.st_size > MAX_CONFIG_BYTES:
        return too_big(info.st_size)
    return None


def too_big(size: int | None) -> str:
    got = f"{size:,} bytes" if size is not None else "more than that"
    return (
        f"cannot read the file: it holds {got}; a config file may hold at most "
        f"{MAX_CONFIG_BYTES:,} bytes (1 MiB): keep only settings in it"
    )


def read_config_bytes(path: Path) -> bytes:
    """The file's bytes, refusing devices, pipes, directories and files over the cap.

    The type and size come from the open descriptor (no race with a swap between a check and
    the read), O_NONBLOCK keeps a named pipe from blocking the open, and at most one byte past
    the cap is ever read, even from a file that grows while we read it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        problem = refusal(os.fstat(fd))
        if problem:
            raise ConfigError(str(path), [problem])
        chunks, left = [], MAX_CONFIG_BYTES + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    finally:
        os.close(fd)
    raw = b"".join(chunks)
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(str(path), [too_big(None)])
    return raw


def _screen(text: str) -> None:
    """Walk the YAML events (libyaml, no objects built) and stop at the first sign of abuse.

    PyYAML expands aliases by reference, but every consumer that walks the result (pydantic,
    repr, error messages) pays for the expansion: a 3 KB file can become 10^8 list items.
    Stopping at MAX_NODES bounds the cost of a rejection whatever the file's size.
    """
    nodes = depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            line = event.start_mark.line + 1 if event.start_mark else "?"
            raise YamlShapeError(
                f"line {line}: found alias *{event.anchor}; aliases (and << merges) are not "
                "allowed in a config file: write the value out"
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlShapeError(
                    f"nested deeper than {MAX_DEPTH} levels; the config tree is 4 levels deep"
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        if isinstance(event, yaml.NodeEvent):
            nodes += 1
            if nodes > MAX_NODES:
                raise YamlShapeError(
                    f"holds more than {MAX_NODES:,} values; a config has "
                    "about a hundred (is this a data file?)"
                )


def parse_yaml(text: str, source: str) -> Any:
    """The YAML document in `text`, or ConfigError naming the line and what is wrong."""
    try:
        _screen(text)
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader, screened above
    except YamlShapeError as exc:
        raise ConfigError(source, [f"not accepted as a config: {exc}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)[:200]
        raise ConfigError(source, [f"not valid YAML{where}: {problem}"]) from None


def decode(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [f"the file is not UTF-8 text (byte {exc.start})"]) from None
