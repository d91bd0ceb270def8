"""The files a grading input names: a file, a folder or a glob, each file once, by real path.

Expanded here rather than by DuckDB or `glob.glob`: both follow symlinked folders, so a
symlink loop under a `**` glob either never ends or reads one file dozens of times over. Here a
folder or a glob never descends into a symlinked folder (a symlinked *file* is read, once, at
its real path), and a file reached by two names is read once.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path


def _visible(name: str, segment: str) -> bool:
    """As in `glob`: a wildcard does not match a hidden name unless the pattern starts with '.'."""
    return not name.startswith(".") or segment.startswith(".")


def _entries(folder: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError:  # vanished, unreadable or not a folder: nothing matches in it
        return []


def _walk(folder: str, segments: tuple[str, ...]) -> Iterator[str]:
    """Files under `folder` matching `segments` (`**` = any number of folders)."""
    if not segments:
        return
    segment, rest = segments[0], segments[1:]
    if segment == "**":
        yield from _walk(folder, rest)  # zero folders
        for entry in _entries(folder):
            if _visible(entry.name, segment) and entry.is_dir(follow_symlinks=False):
                yield from _walk(entry.path, segments)  # one more folder, never a symlink
        if not rest:  # a trailing `**` matches every file below
            yield from (e.path for e in _entries(folder) if e.is_file())
        return
    for entry in _entries(folder):
        if not (fnmatchcase(entry.name, segment) and _visible(entry.name, segment)):
            continue
        if rest:
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(entry.path, rest)
        elif entry.is_file():
            yield entry.path


def _split(pattern: str) -> tuple[str, tuple[str, ...]]:
    """The literal folder a glob starts from, and the segments after it."""
    parts = Path(pattern).parts
    first = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    root = str(Path(*parts[:first])) if first else "."
    return root, tuple(parts[first:])


def _folder(root: str, suffixes: set[str]) -> Iterator[str]:
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(folder, name)
            if Path(name).suffix in suffixes and os.path.isfile(path):
                yield path


def expand_paths(location: str, suffixes: set[str]) -> list[str]:
    """Every file `location` names, by real path, each once, in a stable order.

    A folder contributes its files ending in one of `suffixes`; a glob every file it matches.
    """
    path = Path(location)
    if path.is_dir():
        found: Iterator[str] = _folder(location, suffixes)
    elif glob.has_magic(location):
        root, segments = _split(location)
        found = _walk(root, segments)
    else:
        found = iter([location] if path.exists() else [])
    seen: dict[str, None] = {}
    for name in found:
        seen.setdefault(os.path.realpath(name), None)
    return sorted(seen)
