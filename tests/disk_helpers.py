"""A real small disk that tests can fill and free: a tmpfs mount (needs root; CI runs as root)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

FILL_CHUNK = 64 * 1024


class SmallDisk:
    """A tmpfs of `size` mounted at `path`; `fill()` takes every free byte, `free()` gives
    them back. SQLite then fails its writes with SQLITE_FULL exactly as on a full disk."""

    def __init__(self, path: Path, size: str) -> None:
        self.path, self.size = path, size
        self.filler = path / "filler"

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs", str(self.path)],
            check=True,
            capture_output=True,
            text=True,
        )

    def fill(self) -> None:
        with self.filler.open("ab", buffering=0) as out:
            for chunk in (FILL_CHUNK, 1):  # big steps, then the last bytes one at a time
                with contextlib.suppress(OSError):  # ENOSPC: the disk is full, as wanted
                    while True:
                        out.write(b"\0" * chunk)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False, capture_output=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """Skips without root locally; fails in CI, where it must run."""
    disk = SmallDisk(tmp_path / "disk", "16m")
    try:
        if os.geteuid() != 0:
            raise PermissionError("mounting a tmpfs needs root")
        disk.mount()
    except (PermissionError, OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but a tmpfs cannot be mounted: {detail}")
        pytest.skip(f"no tmpfs to fill (needs root): {detail}")
    try:
        yield disk
    finally:
        disk.free()
        disk.unmount()
