"""Landing zone I/O through fsspec: rename-into-place on local disks, one PUT on object stores."""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emugen.errors import LandingError, import_extra
from emugen.files.atomic import replace_atomically
from emugen.files.storage import protocol_of

LOCAL = ("file", "local")
_NOT_WRITABLE = (_errno.EACCES, _errno.EPERM, _errno.EROFS, _errno.ENOTDIR, _errno.EISDIR)


@dataclass(frozen=True)
class Zone:
    """An opened landing root: the fsspec file system and the root path inside it."""

    fs: Any
    root: str  # as configured (shown in errors)
    base: str  # the root inside `fs`, without a trailing slash

    @property
    def local(self) -> bool:
        protocol = self.fs.protocol
        return (protocol if isinstance(protocol, str) else protocol[0]) in LOCAL

    def full(self, relative: str) -> str:
        return f"{self.base}/{relative}"


def open_zone(root: str, storage_options: dict[str, Any] | None = None) -> Zone:
    """The zone at `root`; a relative local path resolves from the working directory."""
    from fsspec.core import url_to_fs

    if protocol_of(root) in LOCAL and "://" not in root:
        root = str(Path(root).expanduser().resolve())
    try:
        fs, base = url_to_fs(root, **(storage_options or {}))
    except ImportError as exc:
        if protocol_of(root) in ("s3", "s3a"):  # the one store emugen ships an extra for
            import_extra("s3fs", "s3", f"the landing root {root}")
        raise LandingError(
            f"landing root {root}: {exc}; {_install_hint(protocol_of(root))}"
        ) from None
    return Zone(fs, root, base.rstrip("/") or "/")


# The package that serves each protocol fsspec does not bundle: emugen ships an extra for S3
# only (MissingExtra names it), so any other store names its own package, not that extra.
_PACKAGES = {
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
    "adl": "adlfs",
}


def _install_hint(protocol: str) -> str:
    package = _PACKAGES.get(protocol)
    if package is None:
        return f"install the fsspec implementation of {protocol!r} into emugen's environment"
    return f"install it: pip install '{package}'"


def write(zone: Zone, relative: str, data: bytes | Iterable[bytes]) -> None:
    """Put `data` (bytes, or pieces of them) at `relative` so that no reader ever sees part
    of it. A local zone streams the pieces to a temporary file; an object store gets one PUT
    of them joined (a multipart upload would commit a part if the pieces failed midway)."""
    path = zone.full(relative)
    try:
        if zone.local:
            _write_local(path, data)
        else:
            # one PUT appears whole or not at all on an object store; there is no rename
            zone.fs.pipe_file(path, data if isinstance(data, bytes) else b"".join(data))
    except LandingError:
        raise
    except Exception as exc:  # noqa: BLE001 - every backend has its own error tree
        raise LandingError(describe(zone, relative, exc)) from None


def _write_local(path: str, data: bytes | Iterable[bytes]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # fsynced here, in the land task between ticks: left dirty, ext4 (data=ordered) writes
    # these blocks during SQLite's next WAL fsync, in a later batch's stages. 0644: mkstemp's
    # 0600 would hide the file from other users' readers.
    replace_atomically(path, data, mode=0o644)


def read(zone: Zone, relative: str) -> bytes | None:
    """The file's bytes, or None when it is not there."""
    try:
        return zone.fs.cat_file(zone.full(relative))
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001
        raise LandingError(describe(zone, relative, exc, "read")) from None


def remove(zone: Zone, relatives: list[str]) -> int:
    """Delete the files that exist; the number deleted."""
    removed = 0
    for relative in relatives:
        try:
            zone.fs.rm_file(zone.full(relative))
            removed += 1
        except FileNotFoundError:
            continue
        except Exception as exc:  # noqa: BLE001
            raise LandingError(describe(zone, relative, exc)) from None
    return removed


def describe(zone: Zone, relative: str, exc: BaseException, action: str = "write") -> str:
    """One line naming the root, what could not be done (write, read, remove), the cause and
    the fix."""
    cause = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    errno = getattr(exc, "errno", None)
    if action == "read" and (isinstance(exc, PermissionError) or errno in _NOT_WRITABLE):
        fix = "make landing.root readable by this user"
    elif isinstance(exc, PermissionError) or errno in _NOT_WRITABLE:
        fix = "make landing.root a folder the worker's user can write, or point it elsewhere"
    elif errno == _errno.ENOSPC:
        fix = "free space there or point landing.root elsewhere"
    else:
        fix = (
            "check that landing.root is reachable and its credentials (landing."
            "storage_options or the environment), or set landing.enabled: false"
        )
    tail = (
        ""
        if action == "read"
        else " (the batch stays in bronze; the reaper lands it once the cause is gone)"
    )
    return f"landing root {zone.root}: cannot {action} {relative}: {cause}; {fix}{tail}"
