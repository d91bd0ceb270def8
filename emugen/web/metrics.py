"""Prometheus metrics: store figures read at scrape time, latency histograms per process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from emugen.db.models import BatchRow
from emugen.fleet.control import is_paused, skip_counts
from emugen.pipeline.arrivals import arrival_counts
from emugen.pipeline.reconcile import reconcile
from emugen.status.batches import LAYERS, WORK, layer_latencies
from emugen.status.quality import injected_by_stream
from emugen.vocabulary import Mode

BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
LAG = timedelta(seconds=120)  # a gold commit can become visible after a later-stamped one
# Settled outcomes only: they partition the settled defects and never decrease, so a sum of
# emugen_defects_total counts each defect once (pending ones go to emugen_defects_pending,
# a gauge; injected = settled + pending is emugen_defects_injected_total).
OUTCOMES = ("caught", "missed", "wrong_reason")
MODES = tuple(m.value for m in Mode)


def figures(session: Session, mode: str | None = None) -> dict[str, Any]:
    """Everything the store collector exports, in one read; `mode` as the config file says."""
    r = reconcile(session)
    return {
        "mode": mode,
        "last_gold": session.execute(
            select(BatchRow.stream, func.max(BatchRow.gold_at))
            .where(BatchRow.gold_at.is_not(None))
            .group_by(BatchRow.stream)
        ).all(),
        "batches": session.execute(
            select(BatchRow.stream, BatchRow.status, func.count()).group_by(
                BatchRow.stream, BatchRow.status
            )
        ).all(),
        "injected": injected_by_stream(session),
        "defects": {d: vars(t) for d, t in r.by_defect.items()},
        "false_alarms": r.false_alarms,
        "skips": skip_counts(session),
        "arrivals": arrival_counts(session),
        "paused": is_paused(session),
    }


class StoreCollector(Collector):
    """Exports the figures last handed to it (the scrape handler refreshes them first)."""

    def __init__(self) -> None:
        self.figures: dict[str, Any] = {}
        self.probe: dict[str, Any] = {}

    def collect(self) -> Iterator[Metric]:
        f, p = self.figures, self.probe
        batches = GaugeMetricFamily(
            "emugen_batches",
            "Batches in the store by stream and status",
            labels=["stream", "status"],
        )
        for stream, status, n in f.get("batches", ()):
            batches.add_metric([stream, status], n)
        records = CounterMetricFamily(
            "emugen_records", "Records generated (bronze rows)", labels=["stream"]
        )
        injected = CounterMetricFamily(
            "emugen_defects_injected", "Defects injected, by type", labels=["stream", "defect"]
        )
        for stream, entry in f.get("injected", {}).items():
            records.add_metric([stream], entry["records"])
            for defect, d in entry["by_type"].items():
                injected.add_metric([stream, defect], d["count"])
        outcomes = CounterMetricFamily(
            "emugen_defects",
            "Settled injected defects by reconciliation outcome (missed = "
            "escaped into silver); the outcomes partition them",
            labels=["defect", "outcome"],
        )
        pending = GaugeMetricFamily(
            "emugen_defects_pending",
            "Injected defects whose batch has not reached silver yet",
            labels=["defect"],
        )
        for defect, tally in f.get("defects", {}).items():
            for outcome in OUTCOMES:
                outcomes.add_metric([defect, outcome], tally[outcome])
            pending.add_metric([defect], tally["pending"])
        alarms = CounterMetricFamily(
            "emugen_false_alarms", "Clean records quarantined", labels=["reason"]
        )
        for reason, n in f.get("false_alarms", {}).items():
            alarms.add_metric([reason], n)
        skips = CounterMetricFamily(
            "emugen_skipped_ticks", "Ticks not turned into a batch", labels=["reason"]
        )
        for reason, n in f.get("skips", {}).items():
            skips.add_metric([reason], n)
        arrivals = CounterMetricFamily(
            "emugen_arrivals",
            "Arrival ledger entries: late and redelivered records, delayed batches, drift points",
            labels=["stream", "condition"],
        )
        for stream, condition, n in f.get("arrivals", ()):
            arrivals.add_metric([stream, condition], n)
        yield from (batches, records, injected, outcomes, pending, alarms, skips, arrivals)
        yield GaugeMetricFamily(
            "emugen_paused", "1 while the fleet is paused", value=int(bool(f.get("paused")))
        )
        yield from _mode_and_freshness(f)
        yield from _probe_metrics(p)


def _mode_and_freshness(f: dict[str, Any]) -> Iterator[Metric]:
    mode = GaugeMetricFamily(
        "emugen_mode",
        "1 for the generation mode the config file names (none while it cannot be read)",
        labels=["mode"],
    )
    for name in MODES:
        mode.add_metric([name], int(f.get("mode") == name))
    yield mode
    # for staleness alerts: time() - emugen_last_gold_timestamp_seconds > N
    last = GaugeMetricFamily(
        "emugen_last_gold_timestamp_seconds",
        "Unix time of the newest batch reaching gold, per stream",
        labels=["stream"],
    )
    for stream, at in f.get("last_gold", ()):
        last.add_metric([stream], at.timestamp())
    yield last


def _probe_metrics(p: dict[str, Any]) -> Iterator[Metric]:
    broker = (p.get("broker") or {}).get("ok")
    if broker is not None:
        yield GaugeMetricFamily("emugen_broker_up", "1 when the broker answered", value=int(broker))
    depth = GaugeMetricFamily(
        "emugen_queue_depth", "Messages waiting (all priority levels)", labels=["queue"]
    )
    for queue, n in (p.get("queues") or {}).items():
        depth.add_metric([queue], n)
    yield depth
    workers = p.get("workers") or {}
    if workers.get("ok") is not None:
        yield GaugeMetricFamily(
            "emugen_workers_alive",
            "Workers that answered the last ping",
            value=len(workers.get("alive", [])),
        )


class Metrics:
    """The registry of one app; `scrape(session, probe)` returns the exposition text."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.store = StoreCollector()
        self.registry.register(self.store)
        self.latency = Histogram(
            "emugen_layer_latency_seconds",
            "From the previous stage's commit to this layer's "
            "(bronze: from the tick; end_to_end: tick to gold), per batch reaching gold",
            ["layer"],
            buckets=BUCKETS_S,
            registry=self.registry,
        )
        self.work = Histogram(
            "emugen_stage_work_seconds",
            "Time inside each stage's task",
            ["stage"],
            buckets=BUCKETS_S,
            registry=self.registry,
        )
        for layer in LAYERS:
            self.latency.labels(layer)
        for stage in WORK:
            self.work.labels(stage)
        self._cursor: datetime | None = None
        self._seen: dict[tuple[str, datetime], datetime] = {}
        self._lock = threading.Lock()

    def observe_new(self, session: Session) -> int:
        """Observe every batch that reached gold since the last call, exactly once."""
        query = select(BatchRow).where(BatchRow.gold_at.is_not(None)).order_by(BatchRow.gold_at)
        if self._cursor is not None:
            query = query.where(BatchRow.gold_at >= self._cursor - LAG)
        observed = 0
        for b in session.scalars(query.execution_options(yield_per=1000)):
            gold_at = b.gold_at
            if gold_at is None or (b.batch_id, gold_at) in self._seen:
                continue  # (None cannot happen: the query asks for gold_at IS NOT NULL)
            self._seen[b.batch_id, gold_at] = gold_at
            self._cursor = max(self._cursor or gold_at, gold_at)
            for layer, ms in layer_latencies(b).items():
                if ms is not None:
                    self.latency.labels(layer).observe(max(ms, 0.0) / 1000)
            for stage in WORK:
                ms = getattr(b, f"{stage}_ms")
                if ms is not None:
                    self.work.labels(stage).observe(ms / 1000)
            observed += 1
        if self._cursor is not None:
            horizon = self._cursor - LAG
            self._seen = {k: at for k, at in self._seen.items() if at >= horizon}
        return observed

    def scrape(self, session: Session, probe: dict[str, Any], mode: str | None = None) -> bytes:
        with self._lock:
            self.observe_new(session)
            self.store.figures, self.store.probe = figures(session, mode), probe
            return generate_latest(self.registry)
