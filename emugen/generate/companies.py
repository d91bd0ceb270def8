"""Companies: every trait of company ordinal k is a hash of (seed, k), so any batch can name it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from faker import Faker

from emugen.generate.seeding import TAG_COMPANY, mix64, unit, uuid_strings
from emugen.generate.spec import BatchSpec, CompanyShape
from emugen.vocabulary import Region, iso_ms, to_ms

REGIONS = (Region.US, Region.EU, Region.SA, Region.AUS)
REGION_SHARE = np.cumsum([0.40, 0.30, 0.15, 0.15])
# (lat_min, lat_max, lon_min, lon_max): where a region's trucks drive.
REGION_BOX = np.array(
    [
        (25.0, 49.0, -124.0, -67.0),
        (36.0, 60.0, -10.0, 30.0),
        (-35.0, 5.0, -75.0, -35.0),
        (-38.0, -12.0, 114.0, 153.0),
    ]
)
_LOCALES = {
    Region.US: ("en_US",),
    Region.EU: ("de_DE", "fr_FR", "nl_NL", "it_IT", "es_ES"),
    Region.SA: ("es_AR", "pt_BR"),
    Region.AUS: ("en_AU",),
}
_SUFFIXES = {
    Region.US: ("Logistics", "Freight", "Trucking", "Transport", "Express", "Carriers"),
    Region.EU: ("Logistik", "Transports", "Spedition", "Logistics", "Trasporti", "Cargo"),
    Region.SA: ("Transportes", "Logística", "Cargas", "Fretes", "Express"),
    Region.AUS: ("Haulage", "Freight", "Transport", "Logistics", "Road Train Co"),
}
_POOL = 150
# purpose words for the per-company hash
_ID_HI, _ID_LO, _REGION, _DRIVERS, _TRUCKS, _ACTIVE, _NAME = range(1, 8)


@cache
def name_pool(region: Region) -> tuple[str, ...]:
    """Surnames for one region, drawn once per process from Faker with a fixed seed.

    The pool does not depend on the batch seed, so it is built once; which name a company
    gets is chosen by the seeded hash. Faker is pinned in pyproject.toml because its word
    lists change between releases, and the golden-hash test would catch that drift.
    """
    names: list[str] = []
    for locale in _LOCALES[region]:
        fake = Faker(locale)
        fake.seed_instance(0)
        names.extend(fake.last_name() for _ in range(_POOL))
    return tuple(dict.fromkeys(names))  # unique, order kept


@dataclass(frozen=True)
class CompanyTraits:
    """Column arrays for a run of company ordinals."""

    ordinals: np.ndarray
    company_ids: list[str]
    region_index: np.ndarray
    drivers: np.ndarray
    trucks: np.ndarray
    active: np.ndarray
    name_bits: np.ndarray


def company_traits(
    seed: int, ordinals: np.ndarray, shape: CompanyShape, ids: bool = True
) -> CompanyTraits:
    """Derive every company trait for `ordinals` at once (pure, vectorised); `ids` False
    leaves `company_ids` empty (emugen/generate/eligible.py keeps no ids)."""
    k = np.asarray(ordinals, dtype=np.uint64)

    def h(purpose: int) -> np.ndarray:
        return mix64(seed, TAG_COMPANY, k, purpose)

    span = shape.drivers_max - shape.drivers_min + 1
    drivers = shape.drivers_min + (h(_DRIVERS) % np.uint64(span)).astype(np.int64)
    # a fleet has somewhat fewer trucks than drivers (shifts share trucks), never zero
    trucks = np.maximum(1, np.round(drivers * (0.6 + 0.4 * unit(h(_TRUCKS))))).astype(np.int64)
    return CompanyTraits(
        ordinals=k.astype(np.int64),
        company_ids=uuid_strings(h(_ID_HI), h(_ID_LO)) if ids else [],
        region_index=np.searchsorted(REGION_SHARE, unit(h(_REGION)), side="right"),
        drivers=drivers,
        trucks=trucks,
        active=unit(h(_ACTIVE)) < shape.active_rate,
        name_bits=h(_NAME),
    )


def company_ids_for(seed: int, ordinals: np.ndarray) -> dict[int, str]:
    """The company id of each of these ordinals (the same hash company_traits uses)."""
    k = np.unique(np.asarray(ordinals, dtype=np.uint64))
    ids = uuid_strings(mix64(seed, TAG_COMPANY, k, _ID_HI), mix64(seed, TAG_COMPANY, k, _ID_LO))
    return dict(zip(k.astype(np.int64).tolist(), ids, strict=True))


def company_name(region: Region, bits: int) -> str:
    pool, suffixes = name_pool(region), _SUFFIXES[region]
    first = pool[bits % len(pool)]
    suffix = suffixes[(bits >> 20) % len(suffixes)]
    if (bits >> 40) % 4 == 0:  # one in four is a partnership
        return f"{first} & {pool[(bits >> 8) % len(pool)]} {suffix}"
    return f"{first} {suffix}"


@dataclass(frozen=True)
class CompanyColumns:
    """The companies a batch onboards, as arrays; dicts are built for the rows asked for."""

    traits: CompanyTraits
    onboarded_ms: np.ndarray

    def __len__(self) -> int:
        return len(self.onboarded_ms)

    def rows_at(self, index: np.ndarray) -> list[dict[str, Any]]:
        index = np.asarray(index, dtype=np.int64)
        t = self.traits
        ids = t.company_ids
        return [
            {
                "company_id": ids[i],
                "company_name": company_name(REGIONS[r], bits),
                "region": REGIONS[r].value,
                "active": active,
                "onboarded_at": at,
                "drivers_count": drivers,
                "trucks_count": trucks,
            }
            for i, r, bits, active, at, drivers, trucks in zip(
                index.tolist(),
                t.region_index[index].tolist(),
                t.name_bits[index].tolist(),
                t.active[index].tolist(),
                iso_ms(self.onboarded_ms[index]),
                t.drivers[index].tolist(),
                t.trucks[index].tolist(),
                strict=True,
            )
        ]


def company_columns(spec: BatchSpec, count: int, rng: np.random.Generator) -> CompanyColumns:
    """The next `count` companies from spec.first_ordinal, onboarded in order in the interval."""
    ordinals = np.arange(spec.first_ordinal, spec.first_ordinal + count)
    traits = company_traits(spec.seed, ordinals, spec.company_shape)
    start = to_ms(spec.interval_start)
    span = to_ms(spec.interval_end) - start
    onboarded = start + np.sort(np.floor(rng.random(count) * span).astype(np.int64))
    return CompanyColumns(traits, onboarded)
