"""The backfill's progress line: done/total, batches/s, events/s and an ETA.

On a terminal one line is rewritten in place; elsewhere (CI logs, a pipe) a plain line is
printed every few seconds, so a log stays readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

PLAIN_EVERY_S = 5.0  # between plain lines when the output is not a terminal
TTY_EVERY_S = 0.2


@dataclass(frozen=True)
class Snapshot:
    batches: int  # ticks in gold, of `total`
    total: int
    records: int  # records in gold (from this run's ticks)
    expected: int  # records of every tick in the plan
    fresh_batches: int  # made during this run: the rate counts only these
    fresh_records: int
    fresh_events: int  # the events among them
    seconds: float


def line(s: Snapshot) -> str:
    """One line: `412/840 ticks  49 %  23.1 batches/s  41,200 events/s  ETA 0:00:19`; the ETA
    from the rate of every record (companies too) and the records left."""
    rate_b = s.fresh_batches / s.seconds if s.seconds > 0 else 0.0
    rate_r = s.fresh_records / s.seconds if s.seconds > 0 else 0.0
    rate_e = s.fresh_events / s.seconds if s.seconds > 0 else 0.0
    left = max(0, s.expected - s.records)
    if left == 0:
        eta = "0:00:00"
    elif rate_r > 0:
        eta = _clock(left / rate_r)
    else:
        eta = "--:--:--"
    share = 100 * s.batches / s.total if s.total else 100.0
    return (
        f"{s.batches:,}/{s.total:,} ticks {share:3.0f} %  {rate_b:6.1f} batches/s  "
        f"{rate_e:9,.0f} events/s  ETA {eta}"
    )


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class Progress:
    """Writes snapshots at a sensible pace; `finish` always writes the last one."""

    def __init__(
        self,
        out: TextIO | None = None,
        tty: bool | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out or sys.stderr
        self.tty = self.out.isatty() if tty is None else tty
        self.now = now
        self.last = float("-inf")
        self.width = 0

    def show(self, snapshot: Snapshot, final: bool = False) -> None:
        moment = self.now()
        if not final and moment - self.last < (TTY_EVERY_S if self.tty else PLAIN_EVERY_S):
            return
        self.last = moment
        text = line(snapshot)
        if self.tty:
            self.out.write("\r" + text.ljust(self.width) + ("\n" if final else ""))
            self.width = len(text)
        else:
            self.out.write(text + "\n")
        self.out.flush()
