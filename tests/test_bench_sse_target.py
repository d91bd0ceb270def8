"""`emugen bench sse`'s push/poll line and its --strict target (the figures are made up here;
the bench itself runs real servers and is not part of the suite)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from emugen.lab import sse, sse_report


@pytest.mark.parametrize(
    "push,poll,met",
    [
        (21.0, 60.0, True),
        (30.0, 60.0, True),  # both bounds are inclusive
        (31.0, 100.0, False),  # over 30 ms, though a third of the poll
        (25.0, 40.0, False),  # under 30 ms, but 0.62x the poll
        (None, 40.0, False),
    ],
)
def test_the_target_is_met_only_within_30_ms_and_half_the_polls_p95(push, poll, met):
    assert sse_report.target(push, poll)["met"] is met


def _figures(p50: float, p95: float) -> dict:
    return {"p50": p50, "p95": p95, "max": p95 + 10, "mean": p50 + 2}


def _result(push_p95: float, poll_p95: float) -> dict:
    pushed, polled = _figures(12.0, push_p95), _figures(30.0, poll_p95)
    return {
        "batches": 120,
        "server_poll_s": 0.05,
        "poll_interval_s": 1.0,
        "quiet_poll_s": 1.0,
        "sse_ms": pushed,
        "sse_poll_ms": polled,
        "polling_ms": _figures(500, 950),
        "push_gain_p50": 2.5,
        "push_gain_p95": sse_report.ratio(poll_p95, push_p95),
        "push_to_poll_p50": 0.4,
        "push_to_poll_p95": sse_report.ratio(push_p95, poll_p95, 2),
        "ratio_p50": 41.7,
        "ratio_p95": 40.0,
        "snapshot_request_ms": _figures(10, 20),
        "target": sse_report.target(push_p95, poll_p95),
    }


@pytest.mark.parametrize("strict", [False, True])
def test_a_missed_target_is_printed_and_fails_the_run_only_with_strict(monkeypatch, strict):
    monkeypatch.setattr(sse, "bench_sse", lambda **kw: _result(45.0, 70.0))
    result = CliRunner().invoke(sse.sse_cmd, ["--strict"] if strict else [])
    assert "push / server poll" in result.output and "0.64x" in result.output
    assert "target: push p95 <= 30 ms and <= 0.5x the server poll's p95: NOT MET" in result.output
    assert result.exit_code == (1 if strict else 0)


def test_a_met_target_passes_with_strict(monkeypatch):
    monkeypatch.setattr(sse, "bench_sse", lambda **kw: _result(22.0, 68.0))
    result = CliRunner().invoke(sse.sse_cmd, ["--strict"])
    assert result.exit_code == 0, result.output
    assert ": MET (push p95 22.0 ms, 0.32x the poll's 68.0 ms)" in result.output
