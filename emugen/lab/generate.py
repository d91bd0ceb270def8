"""Generation benchmark: one production driver batch in memory vs json.dumps and a naive loop."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from emugen.generate import build_spec, generate
from emugen.lab import bench_settings, best_of, peak_rss_mb
from emugen.vocabulary import Mode


def naive_events(count: int, seed: int = 42) -> list[dict]:
    """The straightforward per-record loop: the baseline the vectorised generator must beat."""
    rnd = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    types = ("start_driving", "stopped_driving", "delivered")
    out = []
    for _ in range(count):
        moment = start + timedelta(milliseconds=rnd.randrange(900_000))
        out.append(
            {
                "event_id": f"{rnd.getrandbits(128):032x}",
                "company_id": f"{rnd.getrandbits(128):032x}",
                "driver_id": f"{rnd.getrandbits(128):032x}",
                "truck_id": f"{rnd.getrandbits(128):032x}",
                "event_type": rnd.choices(types, (0.40, 0.35, 0.25))[0],
                "event_timestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "location": {
                    "lat": round(rnd.uniform(25, 49), 5),
                    "lon": round(rnd.uniform(-124, -67), 5),
                },
            }
        )
    return out


def bench_generate(events: int = 100_000, repeat: int = 3, watermark: int = 2_000) -> dict:
    """One production driver batch of `events` events generated in memory, vs json.dumps."""
    spec = build_spec(
        bench_settings(), "events", 1, watermark=watermark, size=events, mode=Mode.production
    )
    gen_s, batch = best_of(repeat, lambda: generate(spec))
    dumps = json.dumps
    json_s, _ = best_of(repeat, lambda: [dumps(r) for r in batch.records])
    naive_s, _ = best_of(1, lambda: naive_events(events))
    return {
        "events": len(batch.records),
        "defects": len(batch.truth),
        "generate_s": gen_s,
        "generate_events_per_s": len(batch.records) / gen_s,
        "json_dumps_s": json_s,
        "generate_to_json_ratio": gen_s / json_s,
        "naive_loop_s": naive_s,
        "naive_loop_events_per_s": events / naive_s,
        "speedup_vs_naive": naive_s / gen_s,
        "peak_rss_mb": peak_rss_mb(),
    }


def format_generate(r: dict) -> str:
    return "\n".join(
        [
            f"generate: one production driver batch, {r['events']:,} events "
            f"({r['defects']:,} with injected defects), best of runs",
            f"  generate (vectorised)   {r['generate_s']:8.3f} s  "
            f"{r['generate_events_per_s']:>12,.0f} "
            "events/s",
            f"  json.dumps same records {r['json_dumps_s']:8.3f} s  -> generate/json.dumps = "
            f"{r['generate_to_json_ratio']:.2f}x",
            f"  naive per-record loop   {r['naive_loop_s']:8.3f} s  "
            f"{r['naive_loop_events_per_s']:>12,.0f} "
            f"events/s  -> speed-up {r['speedup_vs_naive']:.1f}x",
            f"  peak RSS {r['peak_rss_mb']:.0f} MB",
        ]
    )
