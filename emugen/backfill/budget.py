"""What a backfill will take, told before it starts: records, bytes and time, and whether the
bytes fit where they go.

Bytes are estimated from a sample of the plan's own records (the same generator, a thousand
lines of each stream) times what the store and the landing zone keep per line. Free space is
read where it can be: the filesystem of a SQLite file and of a local landing root (once when
both share one). A PostgreSQL server's disk and an object store cannot be seen from here; the
command says so and does not guess.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy.engine import make_url

from emugen.backfill.plan import Plan
from emugen.backfill.ticks import STREAMS, Tick
from emugen.generate import draft, gc_paused
from emugen.generate.spec import FixedSize
from emugen.pipeline.bronze import batch_id_for
from emugen.settings import Settings
from emugen.sinks.filesystem import LOCAL, protocol_of
from emugen.vocabulary import Stream

SAMPLE = 1_000  # records drafted per stream to measure a line
# The store keeps each record ~2.7x its JSON line: bronze's payload, silver's typed row or
# quarantine, the truth, gold, and their indexes (12 hours of production backfilled into
# SQLite: 98,643 records, 31.6 MB of lines, an 85.3 MB file; the landed JSON Lines 31.7 MB)
STORE_PER_LINE = 2.7
MANIFEST_BYTES = 2_048  # per landed batch: its manifest (the spec and the files' digests)
RATE = 15_000  # records per second one worker takes through gold (docs/BENCHMARKS.md)
CONFIRM_ABOVE = 10_000_000  # records: above this a backfill asks before it writes


@dataclass(frozen=True)
class Estimate:
    ticks: int
    records: int
    store_bytes: int
    landing_bytes: int

    @property
    def seconds(self) -> float:
        return self.records / RATE

    def line(self) -> str:
        landing = f", landing {human(self.landing_bytes)}" if self.landing_bytes else ""
        return (
            f"estimate: {self.ticks:,} ticks, {self.records:,} records, store "
            f"{human(self.store_bytes)}{landing}, about {duration(self.seconds)} on one "
            f"worker (~{RATE:,} records/s each)"
        )


@dataclass
class Room:
    """Where the bytes go: what is needed and free per filesystem, and what cannot be seen."""

    short: list[str] = field(default_factory=list)  # "needs X on P, Y free"
    notes: list[str] = field(default_factory=list)


def human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:,.1f} h"


def line_bytes(tick: Tick) -> float:
    """The mean JSON line of this tick's stream, from SAMPLE records of its own spec (an early
    tick: its companies' table is small, and the lines are as long as later ones)."""
    spec = tick.spec.model_copy(update={"size": FixedSize(count=SAMPLE)})
    with gc_paused():
        lines = [line for chunk in draft(spec).line_chunks() for line in chunk]
    return (sum(len(line.encode()) for line in lines) + len(lines)) / max(1, len(lines))


def estimate(plan: Plan, done: set[str] | None = None) -> Estimate:
    """The bytes and time of the plan's ticks not in `done` (batch ids already in the store)."""
    done = done or set()
    ticks, columns = 0, plan.ticks
    records = store = landing = 0.0
    for stream in Stream:
        code = STREAMS.index(stream)
        index = np.flatnonzero(columns.stream == code)
        left = (
            index[
                [batch_id_for(stream, int(seq)) not in done for seq in columns.seq[index].tolist()]
            ]
            if done
            else index
        )
        if not len(left):
            continue
        counted = int(columns.records[left].sum())
        busy = left[columns.records[left] > 0]  # an event tick before any company has none
        size = counted * line_bytes(columns[int(busy[0] if len(busy) else left[0])])
        ticks, records, store = ticks + len(left), records + counted, store + size * STORE_PER_LINE
        if plan.settings.landing.enabled:
            landing += size + MANIFEST_BYTES * len(left)
    return Estimate(ticks, int(records), int(store), int(landing))


def _existing(path: Path) -> Path:
    """The path, or its nearest ancestor that exists (what a new file's bytes will land on)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def room(settings: Settings, needs: Estimate) -> Room:
    """Whether the estimate fits: free space per filesystem, both needs summed on a shared one."""
    found = Room()
    wanted: dict[int, tuple[Path, int]] = {}

    def want(path: Path, size: int) -> None:
        where = _existing(path)
        device = os.stat(where).st_dev
        before = wanted.get(device, (where, 0))[1]
        wanted[device] = (where, before + size)

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        want(Path(str(url.database)).parent, needs.store_bytes)
    else:
        found.notes.append(
            f"the {url.get_backend_name()} server's free space cannot be read "
            f"from here: make sure it has {human(needs.store_bytes)}"
        )
    landing = settings.landing
    if landing.enabled and protocol_of(landing.root) in LOCAL:
        want(Path(landing.root.removeprefix("file://")).expanduser(), needs.landing_bytes)
    elif landing.enabled:
        found.notes.append(
            f"the landing root {landing.root} is an object store, whose free "
            "space cannot be read: not checked"
        )
    for where, size in wanted.values():
        free = shutil.disk_usage(where).free
        if size > free:
            found.short.append(f"needs ~{human(size)} on {where}, {human(free)} free")
    return found
