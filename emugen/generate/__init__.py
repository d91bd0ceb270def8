"""Pure generation: `generate(spec)` turns a batch spec into its records and its defect truth.

May import vocabulary, errors, contract and settings: never the store or anything above it.
"""

from __future__ import annotations

import gc
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from emugen.generate.allocator import keep_big_blocks_mapped
from emugen.generate.arrival import Arrived, Delivery, arrive
from emugen.generate.companies import company_columns
from emugen.generate.events import active_drivers, event_columns
from emugen.generate.quality import Layout, Plan, Truth, inject, plan_defects
from emugen.generate.seeding import substream
from emugen.generate.spec import (
    GENERATOR_VERSION,
    BatchSpec,
    FixedSize,
    PoissonSize,
    UniformSize,
    build_spec,
    without_sources,
)
from emugen.vocabulary import Stream

__all__ = [
    "GENERATOR_VERSION",
    "Arrived",
    "Batch",
    "BatchSpec",
    "Draft",
    "Truth",
    "build_spec",
    "draft",
    "generate",
]

NO_COMPANIES = "no company is in silver yet, so there is no driver to emit events"
# Once per process that generates (workers, `emugen` commands, the benchmarks): big batches'
# temporaries are unmapped when freed, not left in the heap (allocator.py says why).
keep_big_blocks_mapped()


@dataclass(frozen=True)
class Batch:
    """A generated batch: rows in landing order (dirty ones among them) and the ground truth."""

    spec: BatchSpec
    records: list[dict[str, Any]]
    truth: list[Truth]
    note: str | None = None
    arrivals: tuple[Arrived, ...] = ()  # late and redelivered rows (arrival ledger)
    delay: int = 0  # later batches whose landing files are released before this one's

    def lines(self) -> list[str]:
        """Each record as one compact JSON line, exactly as bronze stores it."""
        return to_lines(self.records)


def to_lines(records: list[dict[str, Any]]) -> list[str]:
    dumps = orjson.dumps
    return [dumps(r).decode() for r in records]


def batch_size(spec: BatchSpec, drivers: int | None = None) -> tuple[int, str | None]:
    """The record count of a batch, duplicates included, and why it is 0 when it must be.

    An event batch whose watermark admits no eligible company is empty by rule (whatever
    min_batch_size says): events need drivers, drivers need a company in silver. `drivers`:
    the eligible drivers below the watermark, when the caller counted them already.
    """
    if spec.stream is Stream.events and drivers is None:
        drivers = active_drivers(spec)
    if drivers == 0:
        return 0, NO_COMPANIES
    rng = substream(spec.seed, spec.stream, spec.seq, "size")
    rule = spec.size
    if isinstance(rule, FixedSize):
        return rule.count, None
    if isinstance(rule, UniformSize):
        return int(rng.integers(rule.min, rule.max, endpoint=True)), None
    assert isinstance(rule, PoissonSize) and drivers is not None
    return int(rng.poisson(rule.per_driver * drivers)), None


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building many acyclic dicts.

    A 100k-event batch allocates ~200k containers; with the collector on, its repeated
    generation scans cost about a third of the generation time and buy nothing here.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True)
class Draft:
    """A generated batch whose rows are built on demand, chunk by chunk (for landing)."""

    spec: BatchSpec
    layout: Layout | Delivery
    truth: list[Truth]
    note: str | None = None
    arrivals: tuple[Arrived, ...] = ()  # late and redelivered rows (arrival ledger)
    delay: int = 0  # later batches whose landing files are released before this one's

    def __len__(self) -> int:
        return len(self.layout)

    def chunks(self, size: int = 10_000) -> Iterator[list[dict[str, Any]]]:
        return self.layout.chunks(size)

    def line_chunks(self, size: int = 10_000) -> Iterator[list[str]]:
        for rows in self.layout.chunks(size):
            yield to_lines(rows)


def draft(spec: BatchSpec) -> Draft:
    """Plan a batch: sizes, defects and truth now; the rows themselves when iterated."""
    total, note = batch_size(spec)
    quality = substream(spec.seed, spec.stream, spec.seq, "quality")
    plan: Plan = plan_defects(spec, total, quality)
    records_rng = substream(spec.seed, spec.stream, spec.seq, "records")
    make = company_columns if spec.stream is Stream.companies else event_columns
    columns = make(spec, total - plan.duplicates, records_rng)
    layout, truth = inject(spec, columns, plan, quality)
    if spec.arrival is None:
        return Draft(spec=spec, layout=layout, truth=truth, note=note)
    arrived = arrive(spec, layout, truth, _redraft)
    if spec.arrival.redelivered is not None:  # later batches copy from this one's own rows
        own = arrived.layout.own if isinstance(arrived.layout, Delivery) else arrived.layout
        _remember(without_sources(spec).model_dump_json(), (own, arrived.truth))
    return Draft(
        spec=spec,
        layout=arrived.layout,
        truth=arrived.truth,
        note=note,
        arrivals=arrived.ledger,
        delay=arrived.delay,
    )


# Drafts of recent batches that later batches may copy from (redelivered), by spec: a worker
# that made batch n drafts nothing again to copy from it in n+1..n+max_age. Bounded in rows.
_SOURCES: OrderedDict[str, tuple[Layout | Delivery, list[Truth]]] = OrderedDict()
_SOURCE_ROWS = 400_000


def _redraft(source: BatchSpec) -> tuple[Layout | Delivery, list[Truth]]:
    key = source.model_dump_json()
    found = _SOURCES.get(key)
    if found is None:
        drafted = draft(source)
        found = _remember(key, (drafted.layout, drafted.truth))
    return found


def _remember(
    key: str, drafted: tuple[Layout | Delivery, list[Truth]]
) -> tuple[Layout | Delivery, list[Truth]]:
    _SOURCES[key] = drafted
    _SOURCES.move_to_end(key)
    while len(_SOURCES) > 1 and sum(len(layout) for layout, _ in _SOURCES.values()) > _SOURCE_ROWS:
        _SOURCES.popitem(last=False)
    return drafted


def generate(spec: BatchSpec) -> Batch:
    """Records and truth for `spec`; the same spec gives byte-identical output anywhere."""
    with gc_paused():
        planned = draft(spec)
        records = [row for rows in planned.chunks() for row in rows]
    return Batch(
        spec=spec,
        records=records,
        truth=planned.truth,
        note=planned.note,
        arrivals=planned.arrivals,
        delay=planned.delay,
    )
