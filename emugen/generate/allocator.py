"""The process's allocator: a batch's big temporary arrays go back to the OS once freed."""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)
MMAP_THRESHOLD = 128 * 1024  # glibc's own default, held fixed


def keep_big_blocks_mapped() -> bool:
    """Fix glibc's mmap threshold at its default; whether it could (glibc only).

    glibc raises the threshold to the size of each mmapped block freed (up to 32 MB), so after
    the first few arrays of a million-event batch its 8 MB temporaries come from the heap, and
    once a long-lived array is allocated above them the freed ones cannot be trimmed: +17 MB
    of peak RSS in generation (docs/BENCHMARKS.md). Held fixed, every block over 128 KB is
    mapped on its own and unmapped when freed. Small batches allocate nothing that large.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
