"""The SQLite file a process has open, and whether the path still names that same file."""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path

from sqlalchemy import Connection, Engine

from emugen.errors import StoreFileGone

_FILES: weakref.WeakKeyDictionary[Engine, StoreFile] = weakref.WeakKeyDictionary()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


class StoreFile:
    """Remembers the (device, inode) the first connection opened.

    After `rm var/emugen.db` a process's open connections keep writing into the deleted
    inode: nothing fails, and everything written is lost when the process exits. Comparing
    the path's inode with the remembered one (one stat, ~1 µs) is how that ghost is noticed.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.opened: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def before_connect(self) -> None:
        """Refuse to open the path when that would write into a ghost or pair a new, empty
        file with a deleted file's write-ahead log (SQLite would replay its pages into it)."""
        if self.opened is not None:
            self.check()
            return
        wal = self.path.with_name(self.path.name + "-wal")
        if not self.path.exists() and wal.exists() and wal.stat().st_size > 0:
            raise StoreFileGone(
                f"the SQLite file {self.path} is missing but its write-ahead log {wal} is "
                "still there: the file was deleted while a process had it open. Opening the "
                "path now would pair a new file with that log; stop every emugen process, then "
                f"restore {self.path.name} (or move {wal.name} aside to start a new store)"
            )

    def connected(self) -> None:
        """Called right after each new connection opened the file: remember or compare."""
        with self._lock:
            if self.opened is None:
                self.opened = _identity(self.path)
                return
        self.check()

    def problem(self) -> str | None:
        """Why writing now would go into a ghost, or None while the path is the open file."""
        if self.opened is None:
            return None
        found = _identity(self.path)
        if found == self.opened:
            return None
        what = "was deleted" if found is None else "was replaced by another file"
        return (
            f"the SQLite file {self.path} {what} while emugen had it open (inode "
            f"{self.opened[1]}); writes are refused so nothing lands in a file no one can "
            "read: stop every emugen process, restore the file (or `emugen db init` a "
            "new one), then start the fleet again"
        )

    def check(self) -> None:
        """Raise StoreFileGone when the path no longer names the file this process opened."""
        problem = self.problem()
        if problem is not None:
            raise StoreFileGone(problem)


def sqlite_path(database: str | None) -> Path | None:
    """The file behind a SQLite URL's database part; None for memory and URI databases."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser().resolve()


def track(engine: Engine, path: Path) -> StoreFile:
    store = _FILES[engine] = StoreFile(path)
    return store


def file_of(bind: Engine | Connection) -> StoreFile | None:
    """The tracked file of a SQLite engine made by `make_engine`; None for other databases."""
    return _FILES.get(bind.engine)


def check(bind: Engine | Connection) -> None:
    store = file_of(bind)
    if store is not None:
        store.check()


def problem(bind: Engine | Connection) -> str | None:
    store = file_of(bind)
    return store.problem() if store is not None else None
