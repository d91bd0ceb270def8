"""What /proc says about a process: resident memory, scheduler state, children (no psutil)."""

from __future__ import annotations

import os


def rss_mb(pid: int) -> float | None:
    """Resident set size (VmRSS) of `pid` in MB; None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None  # a zombie has no VmRSS line


def proc_state(pid: int) -> str | None:
    """The scheduler state letter of `pid` (R running, S sleeping, D disk wait, ...)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid` (a worker's pool processes)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            return [int(p) for p in fh.read().split()]
    except FileNotFoundError:
        pass
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found
