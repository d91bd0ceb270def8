"""The head of a filter grade: the verdict line, then one summary row per stream."""

from __future__ import annotations

import re

from emugen.grade.score import Grade, StreamScore

NA = "n/a"  # a ratio with nothing under it: explained under the table


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def _ratio(value: float | None) -> str:
    return NA if value is None else pct(value)


def summary_rows(text: str) -> dict[str, dict[str, str]]:
    """The summary table of a rendered report, read back: stream -> column -> cell."""
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("stream  "))
    names = [n for n, _ in COLUMNS]
    rows = {}
    for line in lines[head + 1 :]:
        if line.startswith("total:"):
            break
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = dict(zip(names, cells, strict=True))
    return rows


def verdict(failures: list[str]) -> str:
    """The first line: PASS, or FAIL with every failing gate in words."""
    if not failures:
        return "PASS: every gate met (recall, precision, clean lost, extra rows)"
    return "FAIL: " + "; ".join(failures)


COLUMNS = (
    ("stream", 10),
    ("records", 10),
    ("recall", 10),
    ("precision", 11),
    ("false alarms", 14),
    ("clean lost", 12),
    ("extra", 8),
    ("duplicated", 12),
    ("pending batches", 17),
)


def _row(name: str, s: StreamScore) -> str:
    cells = (
        name,
        f"{s.records:,}",
        _ratio(s.recall),
        _ratio(s.precision),
        f"{s.false_alarms:,}",
        f"{s.lost_clean:,}",
        f"{s.extra:,}",
        f"{s.duplicated:,}",
        f"{s.pending_batches:,}",
    )
    return "".join(
        f"{c:<{w}}" if i == 0 else f"{c:>{w}}"
        for i, (c, (_, w)) in enumerate(zip(cells, COLUMNS, strict=True))
    )


def summary(grade: Grade) -> list[str]:
    """One row per stream, the totals, and what an `n/a` stands for."""
    head = "".join(f"{n:<{w}}" if i == 0 else f"{n:>{w}}" for i, (n, w) in enumerate(COLUMNS))
    lines = [f"match: {grade.match}   duplicates: {grade.duplicates}", "", head]
    lines += [_row(name, s) for name, s in sorted(grade.streams.items())]
    lines.append(
        f"total: recall {_ratio(grade.recall)}   precision {_ratio(grade.precision)}   "
        f"clean lost {grade.lost_clean:,}"
    )
    streams = grade.streams.values()
    if any(s.precision is None for s in streams):
        lines.append(f"precision {NA}: nothing rejected, so no rejection to be right or wrong")
    if any(s.recall is None for s in streams):
        lines.append(f"recall {NA}: no defective record settled (none injected, or all pending)")
    return lines
