"""Nearest-rank percentiles: one definition for the dashboard, the benchmarks and the soak."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], p: float) -> float:
    """The smallest value with at least p % of the values at or below it; NaN when empty."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]
