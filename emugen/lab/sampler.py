"""What the soak records every few seconds, and the one dashboard client it keeps open.

`Sampler.sample` is one row of soak.csv: resident memory per process role (a worker's pool
included), queue depths, batches in flight, a sliding-window tick -> gold p50/p95, the
reconciliation and the store's size. `SseClient` reads /api/stream for the whole run.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from emugen.db.models import BatchRow, SkippedTick
from emugen.db.session import engine_for, read_session
from emugen.lab import verdict as v
from emugen.lab.processes import PrivateFleet
from emugen.lab.procfs import rss_mb
from emugen.pipeline.reconcile import reconcile
from emugen.pipeline.retention import tally
from emugen.status.stats import percentile


class Sampler:
    """One row of measurements: RSS per role, queues, in flight, window latency, reconciliation."""

    def __init__(self, fleet: PrivateFleet, window_s: float) -> None:
        self.fleet, self.window_s = fleet, window_s
        self.engine = engine_for(fleet.database_url)
        self.roles = fleet.roles()
        # every batch seen in gold, by id: retention prunes batch rows during a long run, and
        # the verdict's latency tenths need the early ones too
        self.seen: dict[str, tuple[datetime, datetime]] = {}
        self._gold_since: datetime | None = None

    def columns(self) -> list[str]:
        return [
            "t",
            "at",
            *(f"rss_{r}_mb" for r in self.roles),
            "queue_pipeline",
            "queue_generate",
            "in_flight",
            "gold",
            "skipped",
            "p50_ms",
            "p95_ms",
            "caught_pct",
            "reconciled",
            "load1",
            "pruned",
            "store_mb",
        ]

    def sample(self, t: float) -> dict[str, Any]:
        row: dict[str, Any] = {"t": round(t, 2), "at": datetime.now(UTC).isoformat()}
        pids = self.fleet.pids()
        for role in self.roles:
            sizes = [m for pid in pids.get(role, []) if (m := rss_mb(pid)) is not None]
            row[f"rss_{role}_mb"] = round(sum(sizes), 2) if sizes else None
        row.update(self._queues())
        since = datetime.now(UTC) - timedelta(seconds=self.window_s)
        with read_session(self.engine) as session:
            states = dict(
                session.execute(
                    select(BatchRow.status, func.count()).group_by(BatchRow.status)
                ).all()
            )
            row["in_flight"] = states.get("bronze", 0) + states.get("silver", 0)
            row["gold"] = states.get("gold", 0)
            row["skipped"] = session.scalar(select(func.count()).select_from(SkippedTick))
            recent = [
                v.gold_latency_ms(at, gold)
                for at, gold in session.execute(
                    select(BatchRow.scheduled_at, BatchRow.gold_at).where(
                        BatchRow.generated_at >= since, BatchRow.status == "gold"
                    )
                )
            ]
            r = reconcile(session)
            pruned = tally(session)
            self._collect(session)
        row["p50_ms"] = round(percentile(recent, 50), 1) if recent else None
        row["p95_ms"] = round(percentile(recent, 95), 1) if recent else None
        row["caught_pct"] = round(r.caught_pct, 3)
        row["reconciled"] = r.ok
        # the machine is shared: the load average says how much of a slow tenth is neighbours
        row["load1"] = round(os.getloadavg()[0], 2)
        row["pruned"] = pruned["events"]["batches"] + pruned["companies"]["batches"]
        row["store_mb"] = round(_store_mb(self.fleet.database_url), 2)
        return row

    def _collect(self, session: Any) -> None:
        """Add the batches that reached gold since the last sample to `seen` (an index range
        per stream; 30 s of overlap covers commits that land out of gold_at order)."""
        for stream in ("companies", "events"):
            query = select(BatchRow.batch_id, BatchRow.scheduled_at, BatchRow.gold_at).where(
                BatchRow.stream == stream, BatchRow.gold_at.is_not(None)
            )
            if self._gold_since is not None:
                query = query.where(BatchRow.gold_at >= self._gold_since - timedelta(seconds=30))
            for batch_id, at, gold in session.execute(query):
                self.seen[batch_id] = (at, gold)
                self._gold_since = max(gold, self._gold_since or gold)

    def _queues(self) -> dict[str, int | None]:
        from emugen.fleet.backpressure import queue_depth
        from emugen.fleet.names import GENERATE_QUEUE, PIPELINE_QUEUE

        try:
            client = self.fleet.redis_client()
            return {
                "queue_pipeline": queue_depth(client, PIPELINE_QUEUE),
                "queue_generate": queue_depth(client, GENERATE_QUEUE),
            }
        except Exception:  # noqa: BLE001 - the broker may be restarting (chaos)
            return {"queue_pipeline": None, "queue_generate": None}


def _store_mb(database_url: str) -> float:
    """The SQLite file and its write-ahead log, in MB (0 for another store)."""
    path = Path(database_url.removeprefix("sqlite:///"))
    return (
        sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists()) / 1e6
        if database_url.startswith("sqlite:///")
        else 0.0
    )


class SseClient(threading.Thread):
    """One dashboard client reading /api/stream for the whole run; counts the snapshots."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.events = url, 0
        self.error: str | None = None

    def run(self) -> None:
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.url}/api/stream", timeout=60) as stream:
                for line in stream:
                    if line.strip() == b"event: snapshot":  # not the `alive` heartbeats
                        self.events += 1
        except Exception as exc:  # noqa: BLE001 - the server stops at the end of the run
            self.error = str(exc)
