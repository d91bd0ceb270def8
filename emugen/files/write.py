"""Writing a checked target without destroying anything: staged beside it and renamed over it
once every byte is written, or streamed to stdout; an OS error is the target's one line."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from emugen.files.target import Target, check_output


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)  # --force keeps the replaced file's mode
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextmanager
def staged(target: Target) -> Iterator[Path]:
    """A unique hidden temporary beside the target; renamed over it once the block finished,
    removed (target untouched) when it raised. OS errors become the target's one line."""
    assert target.path is not None, "stdout is written directly, never staged"
    path = target.path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            prefix=f".{path.name[:200]}.", suffix=".tmp", dir=path.parent
        )
        os.close(handle)
    except OSError as exc:
        raise target.failed(exc) from None
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(path))
        # what appeared there meanwhile (a database, a file without --force) is not replaced
        check_output(
            target.shown, option=target.option, force=target.force, protected=target.protected
        )
        os.replace(tmp, path)  # atomic within one folder
    except OSError as exc:
        raise target.failed(exc) from None
    finally:
        with suppress(OSError):
            tmp.unlink()


@contextmanager
def scratch(target: Target) -> Iterator[Path]:
    """A private folder for intermediate files (beside the target, on its disk; in the
    system's temp folder for stdout), removed afterwards with all it holds."""
    where = None if target.path is None else target.path.parent
    try:
        if where is not None:
            where.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=".emugen-scratch.", dir=where))
    except OSError as exc:
        raise target.failed(exc) from None
    try:
        yield folder
    except OSError as exc:
        raise target.failed(exc) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def to_stdout(target: Target) -> Iterator[BinaryIO]:
    """stdout's bytes, flushed at the end; a reader that went away (`| head`) is one line."""
    sys.stdout.flush()
    out = sys.stdout.buffer
    try:
        yield out
        out.flush()
    except OSError as exc:
        if exc.errno == errno.EPIPE:  # no more writes at exit: the pipe is gone
            with suppress(OSError, ValueError, AttributeError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise target.failed(exc) from None


def write_output(target: Target, data: bytes) -> None:
    """`data` to the target whole: to stdout, or staged and renamed over the file."""
    if target.is_stdout:
        with to_stdout(target) as out:
            out.write(data)
        return
    with staged(target) as tmp:
        tmp.write_bytes(data)
