"""Defect injection: each defective record breaks one contract rule; the truth is kept apart."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from emugen.contract import KEY_FIELD, Reason
from emugen.generate.mutators import MUTATORS, json_text
from emugen.generate.spec import BatchSpec
from emugen.vocabulary import DEFECTS_FOR, Defect, Stream


@dataclass(frozen=True, slots=True)
class Truth:
    """One injected defect, recorded out of band (never in the payload)."""

    row_no: int
    defect: Defect
    field: str | None
    original: str | None  # JSON text of the value before injection; None if there was none
    injected: str | None  # JSON text of the value after; None if the field was removed
    expected_reason: Reason


@dataclass(frozen=True)
class Plan:
    """How many records a batch holds, and which defect each defective record carries."""

    total: int
    defects: tuple[Defect, ...]  # one entry per defective record, duplicates included

    @property
    def duplicates(self) -> int:
        return self.defects.count(Defect.duplicate)


def _draw(weights: Mapping[Defect, float], stream: Stream, u: np.ndarray) -> list[Defect]:
    order = [d for d in DEFECTS_FOR[stream] if weights.get(d, 0) > 0]
    if not order:
        return []
    cumulative = np.cumsum([weights[d] for d in order])
    picks = np.searchsorted(cumulative / cumulative[-1], u, side="right")
    return [order[min(i, len(order) - 1)] for i in picks.tolist()]


def plan_defects(spec: BatchSpec, total: int, rng: np.random.Generator) -> Plan:
    """Pick the defect count (stochastic rounding of rate × total) and a type for each.

    A duplicate needs a clean original. When a batch has fewer clean records than drawn
    duplicates (a rate near 1), the excess is redrawn among the other enabled types, or dropped
    when duplicate is the only one; the config check keeps that case to rates ≤ 0.5.
    """
    count = min(total, int(np.floor(spec.quality_rate * total + rng.random())))
    defects = _draw(spec.quality_weights, spec.stream, rng.random(count))
    excess = defects.count(Defect.duplicate) - (total - count)
    if excess > 0:
        others: dict[Defect, float] = {
            d: w for d, w in spec.quality_weights.items() if d is not Defect.duplicate
        }
        redrawn = iter(_draw(others, spec.stream, rng.random(excess)))
        kept: list[Defect] = []
        for d in reversed(defects):
            if d is Defect.duplicate and excess > 0:
                excess -= 1
                replacement = next(redrawn, None)
                if replacement is not None:
                    kept.append(replacement)
            else:
                kept.append(d)
        defects = kept[::-1]
    return Plan(total=total, defects=tuple(defects))


class Columns(Protocol):
    """Clean rows of a batch held column-wise (see companies.py, events.py)."""

    def __len__(self) -> int: ...

    def rows_at(self, index: np.ndarray) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Layout:
    """Where every row of a batch comes from: a clean column row, a mutated one, or a copy.

    Mutated rows and duplicate copies are rebuilt, like clean rows, when their chunk is asked
    for: a mutator is a pure function of (spec, clean row, draws, index), so applying it again
    gives the same row, and a batch of a million rows never holds its 50,000 dirty ones.
    """

    columns: Columns
    order: np.ndarray  # final row r shows base row order[r] (< n) or copy order[r] - n
    spec: BatchSpec
    defects: list[Defect]  # mutation k breaks its row with defects[k] ...
    draws: np.ndarray  # ... and the uniforms draws[k]
    mutated: dict[int, int]  # base index -> its mutation k
    originals: np.ndarray  # copy number j repeats base row originals[j]

    def __len__(self) -> int:
        return len(self.order)

    def base_rows(self, index: np.ndarray) -> list[dict[str, Any]]:
        """Base rows `index` (ascending) as their first landing shows them: mutated or clean."""
        rows = self.columns.rows_at(index)
        for i, row in zip(index.tolist(), rows, strict=True):
            k = self.mutated.get(i)
            if k is not None:
                MUTATORS[self.defects[k]](self.spec, row, self.draws[k], i)
        return rows

    def chunks(self, size: int = 10_000) -> Iterator[list[dict[str, Any]]]:
        """The rows in landing order, `size` at a time, so a big batch never sits in memory."""
        n = len(self.columns)
        for lo in range(0, len(self.order), size):
            index = self.order[lo : lo + size]
            base = index < n
            built = self.columns.rows_at(index[base])
            if len(built) == len(index) and not self.mutated:
                yield built
                continue
            clean = iter(built)
            copies = iter(self.columns.rows_at(self.originals[index[~base] - n]))
            out = []
            for i in index.tolist():
                if i >= n:
                    out.append(next(copies))
                    continue
                row = next(clean)
                k = self.mutated.get(i)
                if k is not None:
                    MUTATORS[self.defects[k]](self.spec, row, self.draws[k], i)
                out.append(row)
            yield out


_SLICE = 10_000  # dirty rows built at a time while their truth is recorded


def inject(
    spec: BatchSpec, columns: Columns, plan: Plan, rng: np.random.Generator
) -> tuple[Layout, list[Truth]]:
    """Break `plan.defects` into the clean rows of `columns`; return the layout and the truth.

    Mutated records keep their place; each duplicate is inserted at a random place after its
    original, so row order still reads like a real feed and the later copy is the defect.
    """
    n = len(columns)
    singles: list[Defect] = [d for d in plan.defects if d is not Defect.duplicate]
    dups = plan.duplicates
    perm = rng.permutation(n)
    # copies, not views: the views would keep the whole permutation alive with the layout
    targets = perm[: len(singles)].copy()
    originals = perm[len(singles) : len(singles) + dups].copy()
    draws = rng.random((len(singles), 4))
    copy_keys = originals + 0.5 + (n - 0.5 - originals) * rng.random(dups)
    del perm

    order = np.argsort(np.concatenate([np.arange(n, dtype=np.float64), copy_keys]), kind="stable")
    del copy_keys
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    # int32: row numbers of one batch fit, and a million-row batch holds this until landed
    order = order.astype(np.int32)
    truth: list[Truth] = []
    for lo in range(0, len(singles), _SLICE):
        part = targets[lo : lo + _SLICE]
        for k, (index, row) in enumerate(
            zip(part.tolist(), columns.rows_at(part), strict=True), start=lo
        ):
            field, before, after = MUTATORS[singles[k]](spec, row, draws[k], index)
            truth.append(
                Truth(
                    int(position[index]), singles[k], field, before, after, Reason(singles[k].value)
                )
            )
    key = KEY_FIELD[spec.stream]
    for lo in range(0, dups, _SLICE):
        part = originals[lo : lo + _SLICE]
        for j, (o, copy) in enumerate(
            zip(part.tolist(), columns.rows_at(part), strict=True), start=lo
        ):
            truth.append(
                Truth(
                    int(position[n + j]),
                    Defect.duplicate,
                    key,
                    json_text({"row_no": int(position[o])}),
                    json_text(copy[key]),
                    Reason.duplicate,
                )
            )
    truth.sort(key=lambda t: t.row_no)
    mutated = {index: k for k, index in enumerate(targets.tolist())}
    return Layout(columns, order, spec, singles, draws, mutated, originals), truth
