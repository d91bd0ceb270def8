"""A hand-written SVG chart of a soak: RSS per process and p95 latency over time."""

from __future__ import annotations

import math
from html import escape
from typing import Any

WIDTH, PANEL, MARGIN_L, MARGIN_R, MARGIN_T, GAP = 960, 260, 70, 190, 40, 60
COLOURS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#17becf",
    "#bcbd22",
)


def _nice_max(value: float) -> float:
    """A round axis maximum at or above `value`."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _panel(
    top: float,
    title: str,
    unit: str,
    series: dict[str, list[tuple[float, float]]],
    t_max: float,
    marks: list[tuple[float, str]],
) -> list[str]:
    plot_w = WIDTH - MARGIN_L - MARGIN_R
    values = [v for points in series.values() for _, v in points]
    y_max = _nice_max(max(values, default=1.0) * 1.05)

    def x(t: float) -> float:
        return MARGIN_L + plot_w * t / t_max

    def y(v: float) -> float:
        return top + PANEL - PANEL * v / y_max

    out = [
        f'<text x="{MARGIN_L}" y="{top - 10}" font-size="14" font-weight="bold">'
        f"{escape(title)}</text>",
        f'<rect x="{MARGIN_L}" y="{top}" width="{plot_w}" height="{PANEL}" fill="none" '
        'stroke="#999"/>',
    ]
    for i in range(6):
        v = y_max * i / 5
        out.append(
            f'<line x1="{MARGIN_L}" x2="{MARGIN_L + plot_w}" y1="{y(v):.1f}" '
            f'y2="{y(v):.1f}" stroke="#eee"/>'
        )
        out.append(
            f'<text x="{MARGIN_L - 6}" y="{y(v) + 4:.1f}" font-size="11" '
            f'text-anchor="end">{v:g} {unit}</text>'
        )
    for i in range(11):
        t = t_max * i / 10
        out.append(
            f'<text x="{x(t):.1f}" y="{top + PANEL + 15}" font-size="11" '
            f'text-anchor="middle">{_clock(t)}</text>'
        )
    for t, label in marks:
        out.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{top + PANEL}" '
            f'stroke="#f5a623" stroke-dasharray="3,3"><title>{escape(label)}</title>'
            "</line>"
        )
    for i, (name, points) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
        if path:
            out.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>'
            )
        ly = top + 14 + 16 * i
        out.append(
            f'<line x1="{WIDTH - MARGIN_R + 12}" x2="{WIDTH - MARGIN_R + 32}" '
            f'y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"/>'
        )
        out.append(
            f'<text x="{WIDTH - MARGIN_R + 38}" y="{ly}" font-size="12">{escape(name)}</text>'
        )
    return out


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}:{rest:02d}"


def soak_svg(
    samples: list[dict[str, Any]],
    roles: list[str],
    title: str,
    marks: list[tuple[float, str]] | None = None,
) -> str:
    """Top panel: RSS (MB) per process; bottom: sliding-window tick -> gold p95 and p50."""
    marks = marks or []
    t_max = max((s["t"] for s in samples), default=1.0) or 1.0
    rss = {
        role: [
            (s["t"], s[f"rss_{role}_mb"]) for s in samples if s.get(f"rss_{role}_mb") is not None
        ]
        for role in roles
    }
    latency = {
        name: [(s["t"], s[key]) for s in samples if s.get(key) is not None]
        for name, key in (("p95 tick->gold", "p95_ms"), ("p50 tick->gold", "p50_ms"))
    }
    height = MARGIN_T + 2 * PANEL + GAP + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="18" font-size="15" text-anchor="middle">{escape(title)}</text>',
    ]
    parts += _panel(MARGIN_T + 10, "resident memory per process (VmRSS)", "MB", rss, t_max, marks)
    parts += _panel(
        MARGIN_T + PANEL + GAP, "tick -> gold latency, sliding window", "ms", latency, t_max, marks
    )
    parts.append(
        f'<text x="{MARGIN_L + (WIDTH - MARGIN_L - MARGIN_R) / 2}" y="{height - 6}" '
        'font-size="11" text-anchor="middle">time since start (min:s)</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
