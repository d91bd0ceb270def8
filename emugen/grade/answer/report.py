"""The answer grade for people and for machines: the verdict and the three worst cells first;
`--json` under the stable `gold` keys (documented in docs/explanation/grading-the-answer.md)."""

from __future__ import annotations

from datetime import UTC

import orjson

from emugen.vocabulary import EPOCH, MS

WORST = 3


def when(ms: int | None) -> str:
    if ms is None:
        return "no window"
    return (EPOCH + MS * int(ms)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _number(value: float | None) -> str:
    if value is None:
        return "absent"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _ids(examples: list[dict]) -> str:
    shown = [
        f"({e['batch_id']}, {e['row_no']}, {e.get('event_id', e.get('company_id'))})"
        for e in examples
    ]
    return ", ".join(shown)


def cause_line(cause: dict) -> str:
    """One cause in one line: what, how many, which records."""
    if cause["cause"] == "window_shifted":
        shift = cause["shift_ms"] / 1000
        return f"window_shifted: the row holds the window {shift:+g} s away" + (
            " (a time zone?)" if abs(shift) >= 3600 else ""
        )
    text = f"{cause['cause']}: {cause['count']} record(s)"
    return text + (f", e.g. {_ids(cause['examples'])}" if cause["examples"] else "")


def expected_text(cell: dict) -> str:
    if "expected" in cell:
        return str(cell["expected"])
    return f"[{cell['expected_lo']}, {cell['expected_hi']}]"


def verdict(result: dict, max_wrong: int) -> str:
    return "PASS" if result["wrong"] <= max_wrong else "FAIL"


def text(result: dict, max_wrong: int) -> str:
    """The verdict, the three worst cells with their causes, then the counts."""
    lines = [
        f"{verdict(result, max_wrong)}: gold per {result['table']} per "
        f"{result['window_seconds']} s window under {result['policy']}: "
        f"{result['wrong']} wrong of {result['cells']} cells "
        f"({result['pending']} pending, allowed {max_wrong})"
    ]
    for cell in result["wrong_cells"][:WORST]:
        lines.append(
            f"  {when(cell['window_start_ms'])} {cell['key']} {cell['metric']}: "
            f"expected {expected_text(cell)}, got {_number(cell['got'])} "
            f"({cell['difference']:+g})"
        )
        lines.extend(f"      {cause_line(c)}" for c in cell["causes"])
        if "filter" in cell:
            lines.append(
                f"      split: filter {cell['filter']:+g} (its silver gives "
                f"{cell['from_own_silver']}), aggregation {cell['aggregation']:+g}"
            )
    causes = {k: v for k, v in result["by_cause"].items() if v}
    if causes:
        lines.append("  wrong cells by cause: " + ", ".join(f"{k} {v}" for k, v in causes.items()))
    unbalanced = [c for c in result["conservation"] if not c["balanced"]]
    total = {
        k: sum(c[k] for c in result["conservation"])
        for k in ("landed", "counted", "quarantined", "deduplicated", "dropped_late", "unreleased")
    }
    lines.append(
        f"  conservation: landed {total['landed']} = counted {total['counted']} + "
        f"quarantined {total['quarantined']} + deduplicated {total['deduplicated']} + "
        f"dropped as late {total['dropped_late']} + waiting in a delayed batch "
        f"{total['unreleased']}"
        + (f"; {len(unbalanced)} window(s) unbalanced" if unbalanced else "")
    )
    return "\n".join(lines)


def for_json(result: dict, max_wrong: int) -> dict:
    """The `gold` object of `--json`: stable keys, window starts as ISO text and epoch ms."""
    cells = []
    for cell in result["wrong_cells"]:
        item = {"window_start": when(cell["window_start_ms"]).replace(" ", "T") + "Z", **cell}
        cells.append(item)
    conservation = [
        {
            "window_start": (
                when(c["window_start_ms"]).replace(" ", "T") + "Z"
                if c["window_start_ms"] is not None
                else None
            ),
            **c,
        }
        for c in result["conservation"]
    ]
    return {
        **result,
        "verdict": verdict(result, max_wrong),
        "max_wrong_cells": max_wrong,
        "wrong_cells": cells,
        "conservation": conservation,
    }


def as_json(result: dict, max_wrong: int) -> str:
    return orjson.dumps(
        {"gold": for_json(result, max_wrong)}, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    ).decode()
