"""Benchmarks: each figure printed beside a baseline measured in the same run."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from typing import Any

from emugen.settings import Settings, parse_settings


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of `repeat` runs: the figure least disturbed by a noisy machine."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_settings(seed: int = 42) -> Settings:
    return parse_settings(
        {"mode": "production", "seed": seed,
         "clock": {"kind": "simulated", "start": "2026-01-01T00:00:00Z"}},
        env=False,
    )
