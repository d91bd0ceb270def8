"""Who can emit events below a watermark: cumulative eligible drivers, extended as it rises."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from emugen.generate.companies import company_traits
from emugen.generate.exclusions import resolve
from emugen.generate.spec import BatchSpec, CompanyShape

# Capacity grows by this factor: a rising watermark appends one company batch per event batch,
# and copying the whole table each time was O(companies) per batch and the worker's main
# growth. Slack costs address space, not RSS: np.empty leaves the unused tail untouched.
GROWTH = 1.5
_MIN_CAPACITY = 4096
_BUILD_STEP = 65_536  # companies hashed at once, so a first build at 360,000 stays small
_TABLES_KEPT = 4  # (seed, shape) pairs; a fleet uses one


@dataclass(frozen=True)
class Eligible:
    """Per company ordinal below the watermark: `ends` is the running count of the drivers of
    eligible companies (an inactive or excluded company adds none), so a driver drawn
    uniformly in [0, total) lands, by searchsorted, on its company's ordinal directly."""

    ends: np.ndarray
    trucks: np.ndarray
    region: np.ndarray

    @property
    def total(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def first_driver(self, ordinal: np.ndarray) -> np.ndarray:
        """The running driver count before each of these ordinals' own drivers."""
        before: np.ndarray = self.ends[np.maximum(ordinal - 1, 0)].astype(np.int64)
        before[ordinal == 0] = 0
        return before


class _Table:
    """One (seed, shape)'s columns; only [:count] is filled, the rest is capacity."""

    def __init__(self, shape: CompanyShape) -> None:
        self.shape = shape
        self.count = 0
        self.excluded = np.zeros(0, dtype=np.int64)  # sorted, all < count
        self.digest: str | None = None  # of the referenced list `excluded` was last checked on
        self.ends = np.empty(0, dtype=np.int32)
        self.trucks = np.empty(0, dtype=self._trucks_type())
        self.region = np.empty(0, dtype=np.int8)

    def _trucks_type(self) -> type[np.signedinteger]:
        return np.int16 if self.shape.drivers_max < 2**15 else np.int32  # trucks <= drivers

    def _ends_type(self, capacity: int) -> type[np.signedinteger]:
        return np.int32 if self.shape.drivers_max * capacity < 2**31 else np.int64

    def reallocate(self, capacity: int, keep: int) -> None:
        """Fresh arrays holding the first `keep` companies: views handed out earlier keep
        the old ones, so no batch ever sees a column change under it."""

        def moved(old: np.ndarray, dtype: type[np.signedinteger]) -> np.ndarray:
            new = np.empty(capacity, dtype=dtype)
            new[:keep] = old[:keep]
            return new

        self.ends = moved(self.ends, self._ends_type(capacity))
        self.trucks = moved(self.trucks, self._trucks_type())
        self.region = moved(self.region, np.int8)
        self.count = keep
        self.excluded = self.excluded[: np.searchsorted(self.excluded, keep)]
        self.digest = None

    def extend(self, seed: int, upto: int, excluded: np.ndarray) -> None:
        """Fill companies count..upto-1 in place (beyond every view handed out)."""
        if upto > len(self.ends):
            self.reallocate(max(upto, int(len(self.ends) * GROWTH), _MIN_CAPACITY), self.count)
        for lo in range(self.count, upto, _BUILD_STEP):
            hi = min(lo + _BUILD_STEP, upto)
            traits = company_traits(seed, np.arange(lo, hi), self.shape, ids=False)
            weight = np.where(traits.active, traits.drivers, 0)
            first, last = np.searchsorted(excluded, (lo, hi))
            weight[excluded[first:last] - lo] = 0
            base = int(self.ends[lo - 1]) if lo else 0
            self.ends[lo:hi] = base + np.cumsum(weight)
            self.trucks[lo:hi] = traits.trucks
            self.region[lo:hi] = traits.region_index
        self.count = upto
        self.excluded = excluded

    def view(self, upto: int) -> Eligible:
        return Eligible(self.ends[:upto], self.trucks[:upto], self.region[:upto])


def _agree_below(cached: np.ndarray, asked: np.ndarray, limit: int) -> int:
    """The first ordinal below `limit` excluded by one list and not the other, else `limit`."""
    a = cached[: np.searchsorted(cached, limit)]
    b = asked[: np.searchsorted(asked, limit)]
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    if differ.size:
        return int(min(a[differ[0]], b[differ[0]]))
    if len(a) > n:
        return int(a[n])
    return int(b[n]) if len(b) > n else limit


_TABLES: dict[tuple[int, CompanyShape], _Table] = {}
_LOCK = threading.Lock()


def excluded_of(spec: BatchSpec) -> np.ndarray:
    """The spec's excluded ordinals below its watermark, sorted and distinct: resolved from its
    reference, or read from the list an older (or hand-made) spec carries."""
    if spec.exclusions is not None:
        listed = resolve(spec.exclusions, f"{spec.stream.value} batch {spec.seq}")
        return listed[: np.searchsorted(listed, spec.watermark)]
    rejected = spec.excluded_ordinals  # a tuple of ints: fromiter reads it ~2x faster
    excluded = np.fromiter(rejected, dtype=np.int64, count=len(rejected))
    excluded = excluded[excluded < spec.watermark]
    if excluded.size > 1 and not bool(np.all(excluded[1:] > excluded[:-1])):
        excluded = np.unique(excluded)  # build_spec sorts; a hand-made spec may not
    return excluded


def eligible_drivers(spec: BatchSpec) -> Eligible:
    """The eligible drivers of the companies below spec.watermark that silver holds.

    Kept per (seed, shape) and extended as the watermark rises: each event batch costs the
    new companies and the excluded list, not every company made. A list that differs from
    the kept one below the watermark (another fleet's rejections) rebuilds from there on.
    """
    upto = spec.watermark
    excluded = excluded_of(spec)
    digest = spec.exclusions.digest if spec.exclusions is not None else None
    key = (spec.seed, spec.company_shape)
    with _LOCK:
        table = _TABLES.pop(key, None) or _Table(spec.company_shape)
        _TABLES[key] = table  # re-inserted: the dict's order is recency
        while len(_TABLES) > _TABLES_KEPT:
            del _TABLES[next(iter(_TABLES))]
        if digest is None or digest != table.digest:  # the same list needs no second look
            valid = _agree_below(table.excluded, excluded, min(table.count, upto))
            if valid < min(table.count, upto):
                table.reallocate(len(table.ends), valid)
        if upto > table.count:
            table.extend(spec.seed, upto, excluded)
            table.digest = digest
        return table.view(upto)
