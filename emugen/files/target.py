"""Whether a path a user typed may be written: the target of a command's output.

A command's output may go to stdout (`-`) or to a new regular file on a real disk. It never
goes over the configured store, any database file, a device, a fifo, a socket, a folder or a
file of the kernel (/proc, /sys, /dev); an existing regular file is replaced only with
`--force`. Every refusal and OS error is one line (an OutputRefused) naming the path, what it
is or what went wrong, and the fix; `emugen.files.write` writes the checked target.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from emugen.errors import OutputRefused

STDOUT = "-"
# what a name's suffix says the bytes are; a suffix not listed says nothing
SUFFIX_FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
}
# file systems whose files are the kernel's, not data: writing one changes the machine
KERNEL_FILE_SYSTEMS = frozenset(
    {
        "proc",
        "sysfs",
        "devtmpfs",
        "devpts",
        "cgroup",
        "cgroup2",
        "debugfs",
        "tracefs",
        "securityfs",
        "configfs",
        "pstore",
        "bpf",
        "efivarfs",
        "fusectl",
        "mqueue",
        "binfmt_misc",
        "autofs",
        "nsfs",
        "selinuxfs",
        "rpc_pipefs",
        "hugetlbfs",
    }
)
MAGIC = (
    (0, b"SQLite format 3\0", "a SQLite database"),
    (8, b"DUCK", "a DuckDB database"),
    (0, b"\x37\x7f\x06\x82", "a SQLite write-ahead log"),
    (0, b"\x37\x7f\x06\x83", "a SQLite write-ahead log"),
)
STORE_SIDECARS = ("", "-wal", "-shm", "-journal")
WHY = {
    errno.ENOSPC: "the disk is full; free space or choose another folder",
    errno.EDQUOT: "the disk quota is used up; free space or choose another folder",
    errno.EACCES: "permission denied; choose a folder you can write to",
    errno.EPERM: "not permitted; choose a folder you can write to",
    errno.EROFS: "the file system is read-only; choose a writable folder",
    errno.ENAMETOOLONG: "the name is too long; use a shorter one (most file systems allow "
    "255 bytes per name)",
    errno.ENOENT: "a folder on the way does not exist; create it first",
    errno.ENOTDIR: "a part of the path is a file, not a folder; fix the path",
    errno.ELOOP: "the path loops through symbolic links; fix the path",
    errno.EPIPE: "the reader of stdout went away before the end",
}


@dataclass(frozen=True)
class Target:
    """A checked place to write: `path` (the real file, symbolic links resolved), or stdout
    when it is None. `shown` is how the user typed it, for messages."""

    option: str
    shown: str
    path: Path | None
    force: bool = False
    protected: tuple[Path, ...] = ()

    @property
    def is_stdout(self) -> bool:
        return self.path is None

    def refuse(self, why: str) -> OutputRefused:
        return OutputRefused(f"{self.option} {self.shown}: {why}")

    def failed(self, exc: OSError) -> OutputRefused:
        """One line for an OS error while writing: what went wrong and that nothing changed."""
        why = WHY.get(exc.errno or 0) or f"{exc.strerror or exc}; choose another path"
        kept = "" if self.is_stdout else f" ({self.shown} is unchanged)"
        return self.refuse(f"cannot write: {why}{kept}")


def store_files(store: Path | None) -> tuple[Path, ...]:
    """The configured SQLite file and the journal files beside it (none for other stores)."""
    if store is None:
        return ()
    return tuple(store.with_name(store.name + end) for end in STORE_SIDECARS)


def _mount_type(path: str) -> str | None:
    """The file system type of the mount holding `path` (Linux); None when unknown."""
    try:
        lines = Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    best, kind = "", None
    for line in lines:
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])  # \040: space
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, line.split(" - ", 1)[1].split()[0]
    return kind


def _kind_of(mode: int) -> str | None:
    """What a non-regular file is; None for a regular file."""
    for test, what in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a fifo (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return what
    return None if stat.S_ISREG(mode) else "not a regular file"


def _database_in(path: str) -> str | None:
    with open(path, "rb") as fh:
        head = fh.read(16)
    return next((what for at, magic, what in MAGIC if head[at : at + len(magic)] == magic), None)


def _is_own_stdio(real: str) -> bool:
    """Whether `real` is the file behind fd 0, 1 or 2 (/dev/stdout, `--out f > f`)."""
    found = os.stat(real)
    for fd in (0, 1, 2):
        with suppress(OSError):
            mine = os.fstat(fd)
            if (mine.st_dev, mine.st_ino) == (found.st_dev, found.st_ino):
                return True
    return False


def _is_store(real: str, protected: Iterable[Path]) -> bool:
    for candidate in protected:
        with suppress(OSError):
            if real == os.path.realpath(candidate) or os.path.samefile(real, candidate):
                return True
    return False


def _existing(target: Target, real: str, mode: int, protected: Iterable[Path], force: bool) -> None:
    what = _kind_of(mode)
    if what == "a folder":
        raise target.refuse("is a folder; give a file name inside it")
    if what is not None:
        raise target.refuse(
            f"is {what}, not a regular file; give a file name on a disk, or `-` for stdout"
        )
    _on_a_disk(target, real)
    if _is_own_stdio(real):
        raise target.refuse(
            "is this command's own stdin, stdout or stderr; use `-` to write to stdout"
        )
    if _is_store(real, protected):
        raise target.refuse(
            "is the configured store; writing it would destroy the store: give another file name"
        )
    database = _database_in(real)
    if database:
        raise target.refuse(f"is {database}; writing it would destroy it: give another file name")
    if not force:
        raise target.refuse("already exists; add --force to replace it, or give another name")


def _on_a_disk(target: Target, real: str) -> None:
    """Refuse a name in the kernel's file systems, as typed (/dev/stdout) or resolved."""
    for path in (os.path.abspath(target.shown), real):
        kind = _mount_type(path)
        if kind in KERNEL_FILE_SYSTEMS:
            raise target.refuse(
                f"is on the kernel's {kind} file system, not a disk; give a "
                "file name on a disk, or `-` for stdout"
            )


def check_output(
    value: str | Path, *, option: str = "--out", force: bool = False, protected: Iterable[Path] = ()
) -> Target:
    """The target `value` names, or OutputRefused (exit 2) saying why it may not be written."""
    shown = str(value)
    target = Target(option, shown, None)
    if shown == STDOUT:
        return target
    if not shown.strip():
        raise target.refuse("is empty; give a file name, or `-` for stdout")
    try:
        real = os.path.realpath(shown)
        try:
            mode = os.stat(shown).st_mode  # follows links: /dev/stdout is the fd's own file
        except FileNotFoundError:
            _on_a_disk(target, real)  # a new file: its folders are created when written
        else:
            _existing(target, real, mode, protected, force)
    except OSError as exc:
        raise target.failed(exc) from None
    return Target(option, shown, Path(real), force, tuple(protected))


def format_for(target: Target, asked: str | None, allowed: Iterable[str], default: str) -> str:
    """The format to write: `asked` (refused when the name's suffix says another one), else
    the one the suffix names, else `default`."""
    suffix = "" if target.path is None else Path(target.shown).suffix.lower()
    said = SUFFIX_FORMATS.get(suffix)
    if asked and said and said != asked:
        raise target.refuse(
            f"a {suffix} name says {said}, but --format is {asked}; drop "
            f"--format or name the file *.{asked}"
        )
    if asked:
        return asked
    return said if said is not None and said in tuple(allowed) else default


def check_folder(value: str | Path, *, option: str, owned: Iterable[str]) -> Path:
    """A folder a command fills with its own files: new, empty, or holding one of the
    `owned` names (its earlier run). Never a file, a kernel folder, or someone else's files."""
    shown = str(value)
    target = Target(option, shown, None)
    try:
        real = os.path.realpath(shown)
        _on_a_disk(target, real)
        if os.path.lexists(shown) and not os.path.isdir(shown):
            raise target.refuse("is not a folder; give a new or empty folder")
        found = set(os.listdir(shown)) if os.path.isdir(shown) else set()
    except OSError as exc:
        raise target.failed(exc) from None
    if found and not found & set(owned):
        some = ", ".join(sorted(found)[:3])
        more = ", ..." if len(found) > 3 else ""
        raise target.refuse(
            f"holds other files ({some}{more}) that this command would "
            "overwrite or delete; give a new or empty folder"
        )
    return Path(real)
