"""Files replaced whole: a reader sees the old version or the new one, never part of one."""

from __future__ import annotations

import os
import tempfile
from contextlib import suppress
from pathlib import Path


def replace_atomically(path: str | Path, data: bytes, mode: int | None = None) -> None:
    """Write `data` to a temporary beside `path`, fsync it, then rename it over `path`.

    The temporary's name starts with "." (Spark and DuckDB skip such names, so a reader of a
    folder never picks it up) and is unique, so concurrent writers of one path never share
    one. `mode` replaces mkstemp's 0600 when given.
    """
    folder, name = os.path.split(os.path.realpath(path))
    handle, staged = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(staged, mode)
        os.replace(staged, path)  # atomic within one folder
    except BaseException:
        with suppress(OSError):
            os.unlink(staged)
        raise
