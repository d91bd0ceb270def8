"""The live answer grade: an outside pipeline's gold (config `grade.gold`) graded by
`emugen.grade.answer` on the dashboard's cadence; its panel, a batch's share and /metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from emugen.settings import GradeTarget

WORST = 3  # the panel's worst cells, as `emugen grade --gold` prints them
BATCH_CELLS = 20  # wrong cells a batch page lists


def gold_job(target: GradeTarget) -> Any:
    """The `emugen grade --gold` job the config's `grade:` declares (bad declarations raise
    one line, shown on the panel)."""
    # imported here: a dashboard without a grade target never loads DuckDB
    from emugen.grade.answer.policy import parse_columns, parse_policy, parse_tolerance
    from emugen.grade.answer.run import GoldJob
    from emugen.grade.inputs import Source

    assert target.gold is not None
    columns = ",".join(f"{k}={v}" for k, v in target.columns.items())
    return GoldJob(
        gold=Source("gold", target.gold),
        columns=parse_columns(columns),
        width_ms=round(target.window.total_seconds() * 1000) if target.window else None,
        policy=parse_policy(target.policy, target.trigger),
        tolerance=parse_tolerance(target.tolerance),
        kept=Source("kept", target.kept) if target.kept else None,
        rejected=Source("rejected", target.rejected) if target.kept and target.rejected else None,
    )


def cell_view(cell: dict[str, Any]) -> dict[str, Any]:
    """One wrong cell as the pages show it: where, what, expected against got, and why."""
    from emugen.grade.answer.report import cause_line, expected_text, when

    start = cell["window_start_ms"]
    return {
        "window_start": None if start is None else when(start).replace(" ", "T") + "Z",
        "key": cell["key"],
        "metric": cell["metric"],
        "expected": expected_text(cell),
        "got": cell["got"],
        "difference": cell["difference"],
        "causes": [{"cause": c["cause"], "text": cause_line(c)} for c in cell["causes"]],
    }


def gold_panel(result: dict[str, Any], max_wrong: int) -> dict[str, Any]:
    """The verdict, the cell counts, wrong cells by cause and the three worst cells."""
    from emugen.grade.answer.report import verdict

    return {
        "ok": True,
        "error": None,
        "verdict": verdict(result, max_wrong),
        "policy": result["policy"],
        "table": result["table"],
        "window_seconds": result["window_seconds"],
        "cells": result["cells"],
        "wrong": result["wrong"],
        "pending": result["pending"],
        "max_wrong_cells": max_wrong,
        "by_cause": {k: v for k, v in result["by_cause"].items() if v},
        "worst": [cell_view(c) for c in result["wrong_cells"][:WORST]],
    }


def gold_failed(error: str) -> dict[str, Any]:
    """The panel when the answer could not be graded (its file is not there yet, say)."""
    return {"ok": False, "error": error, "verdict": None, "by_cause": {}, "worst": []}


def _overlaps(cell: dict[str, Any], width_ms: int, windows: Iterable[tuple[int, int]]) -> bool:
    start = cell["window_start_ms"]
    if start is None:
        return False
    return any(start < w + size and w < start + width_ms for w, size in windows)


def batch_answer(
    result: dict[str, Any], max_wrong: int, windows: Iterable[tuple[int, int]]
) -> dict[str, Any]:
    """The answer grade for one batch's gold windows ((start ms, width ms) each): the overall
    verdict, and the wrong cells of the consumer's windows that overlap them, by cause."""
    from emugen.grade.answer.explain import by_cause
    from emugen.grade.answer.report import verdict

    spans = list(windows)
    width = result["window_seconds"] * 1000
    cells = [c for c in result["wrong_cells"] if _overlaps(c, width, spans)]
    return {
        "verdict": verdict(result, max_wrong),
        "policy": result["policy"],
        "table": result["table"],
        "window_seconds": result["window_seconds"],
        "wrong": len(cells),
        "by_cause": {k: v for k, v in by_cause(cells).items() if v},
        "wrong_cells": [cell_view(c) for c in cells[:BATCH_CELLS]],
    }


class GoldCollector(Collector):
    """`/metrics` for the outside pipeline's gold: the figures of the dashboard's panel."""

    def __init__(self, read: Callable[[], dict[str, Any] | None]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        data = self.read()
        gold = (data or {}).get("gold")
        if not gold:
            return
        yield GaugeMetricFamily(
            "emugen_gold_grade_ok", "1 when the last answer grade ran", value=int(gold["ok"])
        )
        if not gold["ok"]:
            return
        yield GaugeMetricFamily(
            "emugen_gold_pass",
            "1 when the outside pipeline's gold passes",
            value=int(gold["verdict"] == "PASS"),
        )
        for name, key, text in (
            ("emugen_gold_cells", "cells", "Gold cells of the outside pipeline graded"),
            ("emugen_gold_wrong_cells", "wrong", "Its gold cells that are wrong"),
            ("emugen_gold_pending_cells", "pending", "Its gold cells not settled yet"),
        ):
            yield GaugeMetricFamily(name, text, value=gold[key])
        causes = GaugeMetricFamily(
            "emugen_gold_wrong_cells_by_cause",
            "Its wrong gold cells per cause (a cell with two causes counts under each)",
            labels=["cause"],
        )
        from emugen.grade.answer.explain import CAUSES

        for cause in CAUSES:
            causes.add_metric([cause], gold["by_cause"].get(cause, 0))
        yield causes
