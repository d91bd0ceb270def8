"""Percentiles are nearest-rank, the same for the dashboard, the benchmarks and the soak."""

import math

from emugen.status.stats import percentile


def test_nearest_rank_picks_the_smallest_value_covering_the_percentage():
    values = [5, 1, 4, 2, 3, 6, 8, 7]  # unsorted on purpose
    assert percentile(values, 50) == 4  # rank ceil(4.0) = 4, not 5
    assert percentile(values, 75) == 6  # rank ceil(6.0) = 6
    assert percentile(values, 95) == 8
    assert percentile(values, 0) == 1 and percentile(values, 100) == 8


def test_an_empty_sample_has_no_percentile():
    assert math.isnan(percentile([], 95))
