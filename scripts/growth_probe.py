"""Per-event-batch costs that grow with the company count, measured without a database.

    .venv/bin/python scripts/growth_probe.py     # docs/BENCHMARKS.md, issue 15 item 4

For 10,000, 100,000 and 360,000 companies (the last is ten hours at 1 s) with the share of
rejected companies a soak showed (4.5 %): extending the company traits table by one company
batch, drawing one emulated event batch, and handling the excluded-ordinal list (the settled
mark's JSON, building, dumping and parsing the spec, the generator's array). Best of 20.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from emugen.generate import companies
from emugen.generate.events import event_columns
from emugen.generate.spec import BatchSpec, build_spec
from emugen.settings import Settings

REJECTED_SHARE = 0.0451  # 5,892 of 130,709 companies in the 60-minute soak at 0.1 s


def best_ms(f: Callable[[], Any], n: int = 20) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        f()
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def probe(settings: Settings, made: int) -> str:
    excluded = sorted(random.Random(1).sample(range(made), round(made * REJECTED_SHARE)))
    spec = build_spec(settings, "events", 5, watermark=made, excluded_ordinals=excluded)
    raw = spec.model_dump_json()
    companies._TABLES.clear()
    companies.traits_upto(spec.seed, made, spec.company_shape)
    extend, draw = [], []
    for i in range(1, 21):  # the watermark rises by one company batch per event batch
        top = made + 10 * i
        extend.append(best_ms(lambda top=top: companies.traits_upto(
            spec.seed, top, spec.company_shape), 1))
        moved = spec.model_copy(update={"watermark": top})
        draw.append(best_ms(lambda s=moved, i=i: event_columns(
            s, 12, np.random.default_rng(i)), 1))
    mark = {"ordinal": made, "excluded": excluded}
    listed = (best_ms(lambda: json.dumps(mark))
              + best_ms(lambda: build_spec(settings, "events", 5, watermark=made,
                                           excluded_ordinals=excluded))
              + best_ms(spec.model_dump_json)
              + best_ms(lambda: BatchSpec.model_validate_json(raw))
              + best_ms(lambda: np.asarray(spec.excluded_ordinals, dtype=np.int64)))
    return (f"{made:>7,} companies ({len(excluded):,} rejected): traits table +10 "
            f"{np.median(extend):.2f} ms, draw 12 events {np.median(draw):.2f} ms, "
            f"excluded list {listed:.2f} ms; spec {len(raw) / 1000:.0f} KB, mark "
            f"{len(json.dumps(mark)) / 1000:.0f} KB")


def main() -> None:
    settings = Settings()
    for made in (10_000, 100_000, 360_000):
        print(probe(settings, made))


if __name__ == "__main__":
    main()
