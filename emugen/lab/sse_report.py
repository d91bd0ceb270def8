"""What one `emugen lab bench sse` run found: its figures, the push/poll ratios, the target.

Pure functions over the run's latencies, apart from the run itself (lab/sse.py), so the
target's rule is tested without a server.
"""

from __future__ import annotations

from typing import Any

# The push's target on a quiet machine: its p95 within this, and within this share of the
# server poll's p95 measured on the same commits.
TARGET_PUSH_P95_MS = 30.0
TARGET_PUSH_TO_POLL = 0.5


def stats(values: list[float]) -> dict[str, float | None]:
    from emugen.status.batches import summary

    s = summary(values)
    mean = sum(values) / len(values) if values else None
    return {
        k: None if v is None else round(v, 1)
        for k, v in {"p50": s["p50"], "p95": s["p95"], "max": s["max"], "mean": mean}.items()
    }


def ratio(slow: float | None, fast: float | None, digits: int = 1) -> float | None:
    """How many times `fast` beats `slow`; None when either side has no figure (or fast is 0)."""
    return round(slow / fast, digits) if slow is not None and fast else None


def target(push_p95: float | None, poll_p95: float | None) -> dict[str, Any]:
    """The push's target, judged on one run: p95 within TARGET_PUSH_P95_MS and within
    TARGET_PUSH_TO_POLL of the server poll's p95 on the same commits."""
    share = ratio(push_p95, poll_p95, 2)
    met = (
        push_p95 is not None
        and share is not None
        and push_p95 <= TARGET_PUSH_P95_MS
        and share <= TARGET_PUSH_TO_POLL
    )
    return {
        "push_p95_ms": TARGET_PUSH_P95_MS,
        "push_to_poll": TARGET_PUSH_TO_POLL,
        "ratio_p95": share,
        "met": met,
    }


def format_sse(r: dict[str, Any]) -> str:
    width = 44

    def row(name: str, s: dict[str, Any]) -> str:
        return f"{name:{width}} " + " ".join(f"{s[k]:>8.1f}" for k in ("p50", "p95", "max", "mean"))

    def gain(name: str, p50: float | None, p95: float | None) -> str:
        return f"{name:{width}} {p50!s:>7}x {p95!s:>7}x"

    return "\n".join(
        [
            f"gold commit -> snapshot at the client, {r['batches']} batches (ms), both servers "
            "on one store in the same run",
            f"{'':{width}} {'p50':>8} {'p95':>8} {'max':>8} {'mean':>8}",
            row(f"SSE, pushed on commit (poll {r['quiet_poll_s']:g} s fallback)", r["sse_ms"]),
            row(
                f"SSE, server polls every {r['server_poll_s'] * 1000:g} ms (no broker)",
                r["sse_poll_ms"],
            ),
            row(f"page polling /api/snapshot every {r['poll_interval_s']:g} s", r["polling_ms"]),
            gain("server poll / push", r["push_gain_p50"], r["push_gain_p95"]),
            gain("push / server poll", r["push_to_poll_p50"], r["push_to_poll_p95"]),
            gain("page polling / push", r["ratio_p50"], r["ratio_p95"]),
            row("GET /api/snapshot itself", r["snapshot_request_ms"]),
            target_line(r),
        ]
    )


def target_line(r: dict[str, Any]) -> str:
    t = r["target"]
    return (
        f"target: push p95 <= {t['push_p95_ms']:g} ms and <= {t['push_to_poll']:g}x the "
        f"server poll's p95: {'MET' if t['met'] else 'NOT MET'} (push p95 "
        f"{r['sse_ms']['p95']} ms, {t['ratio_p95']}x the poll's {r['sse_poll_ms']['p95']} ms)"
    )
