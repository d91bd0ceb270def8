"""The live grade of a configured outside pipeline: the dashboard's panel and its /metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, select

from emugen.db.models import BatchRow
from emugen.errors import EmugenError
from emugen.settings import GradeTarget

if TYPE_CHECKING:
    from emugen.grade.grader import Job
    from emugen.grade.score import Grade

COST_FACTOR = 20  # a grade re-runs at most once per 20x its own cost: < 5 % of a core


NOTHING: dict[str, Any] = {"error": None, "streams": {}, "recall": None, "precision": None}


def job_for(target: GradeTarget) -> Job:
    # imported here: a dashboard without a grade target never loads DuckDB
    from emugen.grade.grader import Job
    from emugen.grade.inputs import Source

    assert target.kept is not None
    return Job(
        Source("kept", target.kept),
        Source("rejected", target.rejected) if target.rejected else None,
        match=target.match,
        duplicates=target.duplicates,
        examples=0,
    )


def _stamp(engine: Engine, batch_id: str | None) -> datetime | None:
    if batch_id is None:
        return None
    with engine.connect() as conn:
        return conn.scalar(select(BatchRow.scheduled_at).where(BatchRow.batch_id == batch_id))


def panel(grade: Grade, engine: Engine) -> dict[str, Any]:
    """Recall and precision per stream and defect, pending batches, lag behind the store."""
    streams = {}
    for name, s in sorted(grade.streams.items()):
        if not s.records:
            continue
        reached, latest = _stamp(engine, s.last_batch), _stamp(engine, s.latest_batch)
        lag = (latest - reached).total_seconds() if reached and latest else None
        streams[name] = {
            "recall": s.recall,
            "precision": s.precision,
            "pending_batches": s.pending_batches,
            "last_batch": s.last_batch,
            "latest_batch": s.latest_batch,
            "lag_s": lag,
            "false_alarms": s.false_alarms,
            "lost_clean": s.lost_clean,
            "by_defect": {
                d: {
                    "recall": v.recall,
                    "caught": v.caught,
                    "escaped": v.escaped,
                    "lost": v.lost,
                    "pending": v.pending,
                }
                for d, v in sorted(s.by_defect.items())
            },
        }
    return {
        "ok": True,
        "error": None,
        "recall": grade.recall,
        "precision": grade.precision,
        "match": grade.match,
        "streams": streams,
    }


class LiveGrade:
    """Re-grades the target when due, from whichever thread asks; others get the last panel."""

    def __init__(self, target: Callable[[], GradeTarget | None], engine: Engine) -> None:
        self.target, self.engine = target, engine
        self._lock = threading.Lock()
        self._panel: dict[str, Any] | None = None
        self._for: GradeTarget | None = None
        self._at = 0.0
        self._cost = 0.0
        # the last answer grade in full and its allowed wrong cells (the batch page's share)
        self.gold_result: tuple[dict[str, Any], int] | None = None

    def _due(self, target: GradeTarget) -> bool:
        spacing = max(target.every.total_seconds(), COST_FACTOR * self._cost)
        return target != self._for or time.monotonic() - self._at >= spacing

    def read(self) -> dict[str, Any] | None:
        """The panel (None when no target is configured), re-graded if it is due."""
        target = self.target()
        if target is None:
            return None
        if not self._lock.acquire(blocking=False):
            return self._panel  # another thread is grading: show the last figures
        try:
            if self._due(target):
                started = time.monotonic()
                self._panel = {
                    **self._filter(target),
                    "gold": self._answer(target),
                    "graded_at": time.time(),
                }
                self._for, self._at = target, time.monotonic()
                self._cost = self._at - started
            return self._panel
        finally:
            self._lock.release()

    def _filter(self, target: GradeTarget) -> dict[str, Any]:
        """The filter's panel (`kept`, `rejected`); empty figures when only gold is named."""
        if target.kept is None:
            return {**NOTHING, "ok": True, "graded": False}
        try:
            from emugen.grade.grader import run

            return {**panel(run(job_for(target), self.engine), self.engine), "graded": True}
        except EmugenError as exc:  # e.g. its output does not exist yet: say so
            return {**NOTHING, "ok": False, "error": str(exc), "graded": True}

    def _answer(self, target: GradeTarget) -> dict[str, Any] | None:
        """The answer's panel (`gold`); the full result is kept for the batch page."""
        if target.gold is None:
            self.gold_result = None
            return None
        from emugen.grade.live_gold import gold_failed, gold_job, gold_panel

        try:
            from emugen.grade.answer.run import run_gold

            result = run_gold(gold_job(target), self.engine)
        except EmugenError as exc:
            self.gold_result = None
            return gold_failed(str(exc))
        self.gold_result = (result, target.max_wrong_cells)
        return gold_panel(result, target.max_wrong_cells)


class ExternalCollector(Collector):
    """`/metrics` for the outside pipeline: the same figures as the dashboard's panel."""

    def __init__(self, read: Callable[[], dict[str, Any] | None]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        data = self.read()
        if not data or not data.get("graded", True):
            return  # no target, or only its gold is named (GoldCollector's gauges)
        recall = GaugeMetricFamily(
            "emugen_external_recall",
            "Outside pipeline: share of settled injected defects it rejected",
            labels=["stream", "defect"],
        )
        precision = GaugeMetricFamily(
            "emugen_external_precision",
            "Outside pipeline: share of its rejections that were defects",
            labels=["stream"],
        )
        pending = GaugeMetricFamily(
            "emugen_external_pending_batches",
            "Batches the outside pipeline's output has not reached",
            labels=["stream"],
        )
        lag = GaugeMetricFamily(
            "emugen_external_lag_seconds",
            "Scheduled time of the newest batch minus that of the last batch it reached",
            labels=["stream"],
        )
        for stream, s in data["streams"].items():
            if s["precision"] is not None:
                precision.add_metric([stream], s["precision"])
            pending.add_metric([stream], s["pending_batches"])
            if s["lag_s"] is not None:
                lag.add_metric([stream], s["lag_s"])
            for defect, d in s["by_defect"].items():
                if d["recall"] is not None:
                    recall.add_metric([stream, defect], d["recall"])
        yield GaugeMetricFamily(
            "emugen_external_grade_ok", "1 when the last grade ran", value=int(bool(data["ok"]))
        )
        yield from (recall, precision, pending, lag)
