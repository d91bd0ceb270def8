"""Files replaced whole: a reader sees the old version or the new one, never part of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path


def replace_atomically(
    path: str | Path, data: bytes | Iterable[bytes], mode: int | None = None
) -> None:
    """Write `data` (bytes, or pieces of them) to a temporary beside `path`, fsync it, then
    rename it over `path`; when the pieces fail midway, `path` is left as it was.

    The temporary's name starts with "." (Spark and DuckDB skip such names, so a reader of a
    folder never picks it up) and is unique, so concurrent writers of one path never share
    one. `mode` replaces mkstemp's 0600 when given.
    """
    folder, name = os.path.split(os.path.realpath(path))
    handle, staged = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            for piece in [data] if isinstance(data, bytes) else data:
                out.write(piece)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(staged, mode)
        os.replace(staged, path)  # atomic within one folder
    except BaseException:
        with suppress(OSError):
            os.unlink(staged)
        raise
