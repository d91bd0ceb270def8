"""Driver events: drawn for active drivers of the companies below the batch's watermark."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from emugen.generate.companies import REGION_BOX, company_ids_for
from emugen.generate.eligible import eligible_drivers
from emugen.generate.seeding import TAG_DRIVER, TAG_TRUCK, mix64, uuid_strings
from emugen.generate.spec import BatchSpec
from emugen.vocabulary import EventType, iso_ms, to_ms


def active_drivers(spec: BatchSpec) -> int:
    """How many drivers can emit events in this batch (the Poisson size scales with it)."""
    return eligible_drivers(spec).total


def _entity_ids(seed: int, tag: int, ordinal: np.ndarray, index: np.ndarray) -> list[str]:
    """UUIDs for (company ordinal, index) pairs, one string object per distinct pair."""
    keys = ordinal.astype(np.int64) * 1_000_003 + index
    distinct, inverse = np.unique(keys, return_inverse=True)
    o, i = distinct // 1_000_003, distinct % 1_000_003
    strings = uuid_strings(mix64(seed, tag, o, i, 1), mix64(seed, tag, o, i, 2))
    return [strings[j] for j in inverse.tolist()]


@dataclass(frozen=True)
class EventColumns:
    """A batch's clean events as compact arrays; dicts are built only for the rows asked for."""

    seed: int
    types: tuple[str, ...]
    company_ids: Mapping[int, str]  # by ordinal: the companies this batch names
    ordinal: np.ndarray
    driver: np.ndarray
    truck: np.ndarray
    start_ms: int
    stamp_offset: np.ndarray  # ms after start_ms, in time order
    kind: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    has_gps: np.ndarray
    bits: np.ndarray

    def __len__(self) -> int:
        return len(self.ordinal)

    def rows_at(self, index: np.ndarray) -> list[dict[str, Any]]:
        """The clean event dicts for `index` (any order), built column-wise."""
        index = np.asarray(index, dtype=np.int64)
        if index.size == 0:
            return []
        ordinal = self.ordinal[index]
        company_ids, types = self.company_ids, self.types
        bits = self.bits[index]
        return [
            {
                "event_id": eid,
                "company_id": company_ids[o],
                "driver_id": did,
                "truck_id": tid,
                "event_type": types[k],
                "event_timestamp": at,
                "location": {"lat": la, "lon": lo} if gps else None,
            }
            for eid, o, did, tid, k, at, la, lo, gps in zip(
                uuid_strings(bits[:, 0], bits[:, 1]),
                ordinal.tolist(),
                _entity_ids(self.seed, TAG_DRIVER, ordinal, self.driver[index]),
                _entity_ids(self.seed, TAG_TRUCK, ordinal, self.truck[index]),
                self.kind[index].tolist(),
                iso_ms(self.start_ms + self.stamp_offset[index].astype(np.int64)),
                self.lat[index].tolist(),
                self.lon[index].tolist(),
                self.has_gps[index].tolist(),
                strict=True,
            )
        ]


def event_columns(spec: BatchSpec, count: int, rng: np.random.Generator) -> EventColumns:
    """`count` clean events in time order; drivers are drawn uniformly among eligible drivers."""
    table = eligible_drivers(spec)
    total = table.total
    if total == 0 and count:
        raise ValueError("no eligible company below the watermark; count must be 0")
    # Each driver emits at the same rate, so given the total, drivers are uniform; an
    # ineligible company adds no drivers to `ends`, so searchsorted never lands on it.
    pick = rng.integers(0, total, count) if count else np.zeros(0, dtype=np.int64)
    ordinal = np.searchsorted(table.ends, pick, side="right")
    driver = pick - table.first_driver(ordinal)
    del pick
    truck = (driver % table.trucks[ordinal]).astype(np.int32)  # a driver keeps one truck
    # Narrowed as soon as drawn (the same values): a million-event batch holds these arrays
    # until it is landed, and the temporaries of the draws below come on top.
    ordinal, driver = ordinal.astype(np.int32), driver.astype(np.int32)

    start = to_ms(spec.interval_start)
    span = to_ms(spec.interval_end) - start
    # int32 offsets when the interval is shorter than 24 days (always, in practice)
    offset_type = np.int32 if span < 2**31 else np.int64
    stamp_offset = np.sort(np.floor(rng.random(count) * span).astype(np.int64)).astype(offset_type)

    types = tuple(EventType(t).value for t in spec.event_types)
    cumulative = np.cumsum([spec.event_types[EventType(t)] for t in types])
    kind = np.searchsorted(cumulative / cumulative[-1], rng.random(count), side="right")
    kind = np.minimum(kind, len(types) - 1).astype(np.uint8)

    region = table.region[ordinal]
    lat = _within(REGION_BOX[:, 0][region], REGION_BOX[:, 1][region], rng.random(count))
    lon = _within(REGION_BOX[:, 2][region], REGION_BOX[:, 3][region], rng.random(count))
    del region
    has_gps = rng.random(count) >= spec.location_missing_rate
    bits = rng.integers(0, 2**64 - 1, (count, 2), dtype=np.uint64, endpoint=True)
    return EventColumns(
        spec.seed,
        types,
        company_ids_for(spec.seed, ordinal),
        ordinal,
        driver,
        truck,
        start,
        stamp_offset,
        kind,
        lat,
        lon,
        has_gps,
        bits,
    )


def _within(low: np.ndarray, high: np.ndarray, u: np.ndarray) -> np.ndarray:
    """low + u * (high - low) rounded to 5 places, column by column: no (n, 4) box in memory."""
    within: np.ndarray = np.round(low + u * (high - low), 5)
    return within
