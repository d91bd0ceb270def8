"""Driver events: drawn for active drivers of the companies below the batch's watermark."""

from __future__ import annotations

import numpy as np

from emugen.generate.companies import REGION_BOX, traits_upto
from emugen.generate.seeding import (
    TAG_DRIVER,
    TAG_TRUCK,
    iso_ms,
    mix64,
    to_ms,
    uuid_strings,
)
from emugen.generate.spec import BatchSpec
from emugen.settings import EventType


def eligible_companies(spec: BatchSpec) -> np.ndarray:
    """Ordinals of active companies below the watermark that silver holds."""
    if spec.watermark == 0:
        return np.zeros(0, dtype=np.int64)
    traits = traits_upto(spec.seed, spec.watermark, spec.company_shape)
    ok = traits.active.copy()
    excluded = np.asarray(spec.excluded_ordinals, dtype=np.int64)
    ok[excluded[excluded < spec.watermark]] = False
    return np.flatnonzero(ok)


def active_drivers(spec: BatchSpec) -> int:
    """How many drivers can emit events in this batch (the Poisson size scales with it)."""
    live = eligible_companies(spec)
    if live.size == 0:
        return 0
    return int(traits_upto(spec.seed, spec.watermark, spec.company_shape).drivers[live].sum())


def _entity_ids(seed: int, tag: int, ordinal: np.ndarray, index: np.ndarray) -> list[str]:
    """UUIDs for (company ordinal, index) pairs, one string object per distinct pair."""
    keys = ordinal.astype(np.int64) * 1_000_003 + index
    distinct, inverse = np.unique(keys, return_inverse=True)
    o, i = distinct // 1_000_003, distinct % 1_000_003
    strings = uuid_strings(mix64(seed, tag, o, i, 1), mix64(seed, tag, o, i, 2))
    return [strings[j] for j in inverse.tolist()]


def event_records(spec: BatchSpec, count: int, rng: np.random.Generator) -> list[dict]:
    """`count` clean events in time order; drivers are drawn uniformly among active drivers."""
    if count == 0:
        return []
    live = eligible_companies(spec)
    if live.size == 0:
        raise ValueError("no eligible company below the watermark; count must be 0")
    traits = traits_upto(spec.seed, spec.watermark, spec.company_shape)
    per_company = traits.drivers[live]
    ends = np.cumsum(per_company)
    # Each driver emits at the same rate, so given the total, drivers are uniform.
    pick = rng.integers(0, ends[-1], count)
    slot = np.searchsorted(ends, pick, side="right")
    ordinal = live[slot]
    driver = pick - (ends[slot] - per_company[slot])
    truck = driver % traits.trucks[ordinal]  # a driver keeps one truck

    start = to_ms(spec.interval_start)
    span = to_ms(spec.interval_end) - start
    stamps = iso_ms(start + np.sort(np.floor(rng.random(count) * span).astype(np.int64)))

    types = [EventType(t).value for t in spec.event_types]
    cumulative = np.cumsum([spec.event_types[EventType(t)] for t in types])
    kind = np.searchsorted(cumulative / cumulative[-1], rng.random(count), side="right")
    kind = np.minimum(kind, len(types) - 1)

    box = REGION_BOX[traits.region_index[ordinal]]
    lat = np.round(box[:, 0] + rng.random(count) * (box[:, 1] - box[:, 0]), 5).tolist()
    lon = np.round(box[:, 2] + rng.random(count) * (box[:, 3] - box[:, 2]), 5).tolist()
    has_gps = (rng.random(count) >= spec.location_missing_rate).tolist()

    bits = rng.integers(0, 2**64 - 1, (count, 2), dtype=np.uint64, endpoint=True)
    event_ids = uuid_strings(bits[:, 0], bits[:, 1])
    company_ids = traits.company_ids
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
            event_ids,
            ordinal.tolist(),
            _entity_ids(spec.seed, TAG_DRIVER, ordinal, driver),
            _entity_ids(spec.seed, TAG_TRUCK, ordinal, truck),
            kind.tolist(),
            stamps,
            lat,
            lon,
            has_gps,
            strict=True,
        )
    ]
