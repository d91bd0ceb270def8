"""Arrival conditions on a drafted event batch: late, out-of-order, redelivered, delayed, drift.

Each condition draws from its own seeded sub-stream of (seed, stream, seq), after the records
and the defects are drawn, so a batch without arrival conditions is byte for byte what it was,
and turning one condition on moves no draw of another. What each condition did is returned as
the arrival ledger, kept out of band like the defect truth.

- drift: from the drift seq on (contract version 2) every record carries the new field.
- late: clean records (never a defective one, nor a duplicate's original) get an event time
  before the interval, by 1 ms to `max_lateness`.
- out_of_order: off, records come in generation order: event-time order, a duplicate after its
  original, a late record in the slot it was drawn for. On, the batch's own rows are shuffled
  (a duplicate still comes after its original: the later copy is the defect).
- redelivered: copies of clean own rows of the `max_age` batches before, regenerated from their
  specs (which the batch's spec carries), appended after the batch's own rows, so that a
  batch's own rows and their numbers never depend on what it copies.
- delayed: the number of later batches whose files land before this one's (0: on time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import Any

import numpy as np
import orjson

from emugen.generate.events import EventColumns
from emugen.generate.mutators import json_text
from emugen.generate.quality import Columns, Layout, Truth
from emugen.generate.seeding import substream
from emugen.generate.spec import ArrivalSpec, BatchSpec
from emugen.vocabulary import Defect, to_ms

LATE, REDELIVERED, DELAYED, DRIFT = "late", "redelivered", "delayed", "drift"
_ROW_NO = attrgetter("row_no")


@dataclass(frozen=True, slots=True)
class Arrived:
    """One late or redelivered record of a batch, recorded out of band (never in the payload)."""

    row_no: int
    condition: str  # late | redelivered
    event_ms: int  # its event time: the window it belongs to follows from it
    lateness_ms: int  # the batch's interval start minus the event time
    original_seq: int | None = None  # redelivered: the batch and row it copies
    original_row_no: int | None = None


@dataclass(frozen=True)
class DriftColumns:
    """Event columns whose rows carry the drift field (an additive, optional field)."""

    inner: EventColumns
    field: str
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.inner)

    def rows_at(self, index: np.ndarray) -> list[dict[str, Any]]:
        index = np.asarray(index, dtype=np.int64)
        rows = self.inner.rows_at(index)
        for row, value in zip(rows, self.values[index].tolist(), strict=True):
            row[self.field] = value
        return rows


@dataclass(frozen=True)
class Delivery:
    """A batch's own rows (its layout), then the redelivered copies of earlier batches' rows."""

    own: Layout
    copies: list[dict[str, Any]]

    @property
    def columns(self) -> Columns:
        return self.own.columns

    def __len__(self) -> int:
        return len(self.own) + len(self.copies)

    def chunks(self, size: int = 10_000) -> Iterator[list[dict[str, Any]]]:
        yield from self.own.chunks(size)
        for lo in range(0, len(self.copies), size):
            yield self.copies[lo : lo + size]


@dataclass(frozen=True)
class Arrival:
    """A batch's layout and truth under its arrival conditions, and what those did."""

    layout: Layout | Delivery
    truth: list[Truth]
    ledger: tuple[Arrived, ...]
    delay: int  # later batches whose files land before this one's


# a source batch's own rows and their truth, drafted from its spec
Redraft = Callable[[BatchSpec], tuple[Layout | Delivery, list[Truth]]]


def arrive(spec: BatchSpec, layout: Layout, truth: list[Truth], redraft: Redraft) -> Arrival:
    """Apply `spec.arrival` to a drafted batch; `redraft` drafts a source batch's own rows."""
    arrival = spec.arrival
    if arrival is None:
        return Arrival(layout, truth, (), 0)
    columns = layout.columns
    assert isinstance(columns, EventColumns), "arrival conditions apply to events only"
    columns, late = _late(spec, arrival, layout, columns)
    moved: Columns = columns
    if arrival.drift is not None and arrival.contract_version >= 2:
        rng = substream(spec.seed, spec.stream, spec.seq, DRIFT)
        moved = DriftColumns(
            columns, arrival.drift.field, np.round(rng.random(len(columns)) * 500_000, 1)
        )
    layout = replace(layout, columns=moved)
    if arrival.out_of_order:
        layout, truth = _shuffle(spec, layout, truth)
    position = _positions(layout)
    start = to_ms(spec.interval_start)
    copies, redelivered = _redeliver(spec, arrival, len(layout), redraft)
    return Arrival(
        Delivery(layout, copies) if arrival.redelivered else layout,
        truth,
        (*_late_ledger(position[late[0]], late[1], start), *redelivered),
        _delay(spec, arrival),
    )


def _late(
    spec: BatchSpec, arrival: ArrivalSpec, layout: Layout, columns: EventColumns
) -> tuple[EventColumns, tuple[np.ndarray, np.ndarray]]:
    """Move a clean record's event time before the interval; the base indexes and latenesses."""
    if arrival.late is None:
        return columns, (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    rng = substream(spec.seed, spec.stream, spec.seq, LATE)
    n = len(columns)
    clean = np.ones(n, dtype=bool)
    clean[np.fromiter(layout.mutated, dtype=np.int64, count=len(layout.mutated))] = False
    clean[layout.originals] = False
    eligible = np.flatnonzero(clean)
    count = min(len(eligible), int(np.floor(arrival.late.rate * len(layout) + rng.random())))
    pick = np.sort(rng.choice(eligible, count, replace=False))
    lateness = rng.integers(1, arrival.late.max_lateness_ms, count, endpoint=True)
    offsets = columns.stamp_offset.astype(np.int64)
    offsets[pick] = -lateness
    shifted = replace(columns, stamp_offset=offsets)
    return shifted, (pick, lateness)


def _late_ledger(rows: np.ndarray, lateness: np.ndarray, start: int) -> list[Arrived]:
    """The late rows' ledger entries in row order (`rows`: where each landed)."""
    ranked = np.argsort(rows, kind="stable")
    return [
        Arrived(row, LATE, start - late, late)
        for row, late in zip(rows[ranked].tolist(), lateness[ranked].tolist(), strict=True)
    ]


def _positions(layout: Layout) -> np.ndarray:
    """The row number of every base row and duplicate copy (`order` inverted)."""
    position = np.empty(len(layout.order), dtype=np.int64)
    position[layout.order] = np.arange(len(layout.order))
    return position


def _shuffle(spec: BatchSpec, layout: Layout, truth: list[Truth]) -> tuple[Layout, list[Truth]]:
    """Shuffle the own rows; the truth follows its rows, a duplicate staying after its original."""
    rng = substream(spec.seed, spec.stream, spec.seq, "order")
    perm = rng.permutation(len(layout.order))
    moved_to = np.empty(len(perm), dtype=np.int64)
    moved_to[perm] = np.arange(len(perm))
    rows = moved_to[_row_numbers(truth)]
    originals: dict[int, str] = {}  # truth k (a duplicate) -> its original's new row, as text
    for k, t in enumerate(truth):
        if t.defect is Defect.duplicate and t.original is not None:
            first = int(moved_to[orjson.loads(t.original)["row_no"]])
            row = int(rows[k])  # same bytes: the later one is the copy
            rows[k] = max(row, first)
            originals[k] = json_text({"row_no": min(row, first)})
    at = rows.tolist()
    shuffled = [
        Truth(at[k], t.defect, t.field, originals.get(k, t.original), t.injected, t.expected_reason)
        for k, t in enumerate(truth)
    ]
    ranked = np.argsort(rows, kind="stable").tolist()  # stable: list.sort's order on ties
    return replace(layout, order=layout.order[perm]), [shuffled[k] for k in ranked]


def _row_numbers(truth: list[Truth]) -> np.ndarray:
    """The row number of each truth entry, as an array."""
    return np.fromiter(map(_ROW_NO, truth), dtype=np.int64, count=len(truth))


def _redeliver(
    spec: BatchSpec, arrival: ArrivalSpec, own: int, redraft: Redraft
) -> tuple[list[dict[str, Any]], list[Arrived]]:
    """Copies of clean own rows of earlier batches, appended after the `own` rows."""
    redo = arrival.redelivered
    if redo is None or spec.seq == 1:
        return [], []
    rng = substream(spec.seed, spec.stream, spec.seq, REDELIVERED)
    count = int(np.floor(redo.rate * own + rng.random()))
    ages = rng.integers(1, min(redo.max_age, spec.seq - 1), count, endpoint=True)
    by_seq = {s.seq: s for s in redo.sources}
    start = to_ms(spec.interval_start)
    copies: list[dict[str, Any]] = []
    ledger: list[Arrived] = []
    for age in sorted(set(ages.tolist())):
        source = by_seq.get(spec.seq - age)
        if source is None:  # not in the store any more: nothing to copy from it
            continue
        drafted, truth = redraft(source)
        rows, event_ms = _clean_rows(drafted, truth, int((ages == age).sum()), rng)
        for row_no, record, at in zip(
            rows.tolist(), _rows_at(drafted, rows), event_ms, strict=True
        ):
            ledger.append(
                Arrived(own + len(copies), REDELIVERED, at, start - at, source.seq, row_no)
            )
            copies.append(record)
    return copies, ledger


def _clean_rows(
    layout: Layout | Delivery, truth: list[Truth], count: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[int]]:
    """`count` distinct row numbers of clean own rows of a source batch, and their event times."""
    own = layout.own if isinstance(layout, Delivery) else layout
    base = own.order.astype(np.int64)
    clean_rows = np.ones(len(base), dtype=bool)
    clean_rows[_row_numbers(truth)] = False
    clean = np.flatnonzero(clean_rows)
    rows = np.sort(rng.choice(clean, min(count, len(clean)), replace=False))
    events = own.columns.inner if isinstance(own.columns, DriftColumns) else own.columns
    assert isinstance(events, EventColumns)
    stamps = events.start_ms + events.stamp_offset[_column_rows(own, rows)].astype(np.int64)
    return rows, stamps.tolist()


def _column_rows(own: Layout, rows: np.ndarray) -> np.ndarray:
    """The clean column row behind each row number (a shuffle can leave a duplicate's original
    in its copy's slot: the two are the same bytes, and the truth names the later one)."""
    index: np.ndarray = own.order[rows].astype(np.int64)
    n = len(own.columns)
    copy = index >= n
    index[copy] = own.originals[index[copy] - n]
    return index


def _rows_at(layout: Layout | Delivery, rows: np.ndarray) -> list[dict[str, Any]]:
    own = layout.own if isinstance(layout, Delivery) else layout
    return own.columns.rows_at(_column_rows(own, rows))


def delay_of(spec: BatchSpec) -> int:
    """How many later batches' files land before this batch's (0: on time); from the spec."""
    return 0 if spec.arrival is None else _delay(spec, spec.arrival)


def _delay(spec: BatchSpec, arrival: ArrivalSpec) -> int:
    if arrival.delayed is None:
        return 0
    rng = substream(spec.seed, spec.stream, spec.seq, DELAYED)
    held, delay = (
        rng.random() < arrival.delayed.rate,
        rng.integers(1, arrival.delayed.max_delay, endpoint=True),
    )
    return int(delay) if held else 0
