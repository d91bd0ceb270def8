"""Per-event-batch costs that grow with the company count, measured without a database.

`probe`: for 10,000, 100,000 and 360,000 companies (the last is ten hours at 1 s) with the
share of rejected companies a soak showed (4.5 %): raising the watermark by one company batch
(`active_drivers`, which extends the kept table), drawing one emulated event batch, and
handling the excluded-ordinal list (the settled mark's JSON, building, dumping and parsing
the spec, the generator's array). Best of 20.

`replay`: the 60-minute soak at 0.1 s in one process: the watermark rises from 20,000 to
130,709 companies one company batch (10) at a time, the excluded list grows with it and
arrives as a fresh tuple each batch (as a worker parses it from the spec), and each step
sizes and draws one event batch. Prints RSS and tracemalloc's live bytes before and after.
Only public functions are called, so the same command measures an older checkout too.
"""

from __future__ import annotations

import bisect
import gc
import json
import random
import resource
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from emugen.generate.events import active_drivers, event_columns
from emugen.generate.spec import BatchSpec, build_spec
from emugen.settings import Settings

REJECTED_SHARE = 0.0451  # 5,892 of 130,709 companies in the 60-minute soak at 0.1 s
REPLAY_FROM, REPLAY_TO, COMPANY_BATCH = 20_000, 130_709, 10


def best_ms(f: Callable[[], Any], n: int = 20) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        f()
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def probe(settings: Settings, made: int) -> str:
    excluded = tuple(sorted(random.Random(1).sample(range(made), round(made * REJECTED_SHARE))))
    spec = build_spec(settings, "events", 5, watermark=made, excluded_ordinals=excluded)
    raw = spec.model_dump_json()
    active_drivers(spec)
    extend, draw = [], []
    for i in range(1, 21):  # the watermark rises by one company batch per event batch
        moved = spec.model_copy(update={"watermark": made + 10 * i})
        extend.append(best_ms(partial(active_drivers, moved), 1))
        draw.append(best_ms(partial(event_columns, moved, 12, np.random.default_rng(i)), 1))
    mark = {"ordinal": made, "excluded": excluded}
    listed = (
        best_ms(lambda: json.dumps(mark))
        + best_ms(
            lambda: build_spec(settings, "events", 5, watermark=made, excluded_ordinals=excluded)
        )
        + best_ms(spec.model_dump_json)
        + best_ms(lambda: BatchSpec.model_validate_json(raw))
        + best_ms(lambda: np.asarray(spec.excluded_ordinals, dtype=np.int64))
    )
    return (
        f"{made:>7,} companies ({len(excluded):,} rejected): watermark +10 "
        f"{np.median(extend):.2f} ms, draw 12 events {np.median(draw):.2f} ms, "
        f"excluded list {listed:.2f} ms; spec {len(raw) / 1000:.0f} KB, mark "
        f"{len(json.dumps(mark)) / 1000:.0f} KB"
    )


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def replay(settings: Settings, traced: bool) -> str:
    rejected = sorted(random.Random(1).sample(range(REPLAY_TO), round(REPLAY_TO * REJECTED_SHARE)))
    base = build_spec(settings, "events", 5, watermark=REPLAY_FROM)

    def step(watermark: int, seq: int) -> None:
        below = rejected[: bisect.bisect_left(rejected, watermark)]
        spec = base.model_copy(
            update={"watermark": watermark, "excluded_ordinals": tuple(int(k) for k in below)}
        )
        active_drivers(spec)
        event_columns(spec, 12, np.random.default_rng(seq))

    step(REPLAY_FROM, 0)
    gc.collect()
    if traced:
        tracemalloc.start()
    rss_before = rss_mb()
    traced_before = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    steps = range(REPLAY_FROM + COMPANY_BATCH, REPLAY_TO + 1, COMPANY_BATCH)
    for seq, watermark in enumerate(steps, 1):
        step(watermark, seq)
    took = time.perf_counter() - started
    gc.collect()
    grown = (tracemalloc.get_traced_memory()[0] - traced_before) / 2**20
    companies = REPLAY_TO - REPLAY_FROM
    traced_note = (
        (f", tracemalloc live +{grown:.2f} MB ({grown * 2**20 / companies:.1f} bytes per company)")
        if traced
        else ""
    )
    return (
        f"replay {REPLAY_FROM:,} -> {REPLAY_TO:,} companies in {len(steps):,} event batches "
        f"({took:.1f} s): RSS {rss_before:.1f} -> {rss_mb():.1f} MB "
        f"(+{rss_mb() - rss_before:.1f} MB){traced_note}"
    )
