"""Batches as the dashboard shows them: rows with stage latencies, pages, percentiles."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from emugen.db.models import BatchRow
from emugen.status.report import layer_latencies
from emugen.status.stats import percentile

STATUSES = ("bronze", "silver", "gold", "failed")
# Each layer's latency is the time from the previous stage's commit to its own (queueing
# included): what a developer waiting for a batch feels. `bronze` starts at the tick.
LAYERS = ("bronze", "silver", "gold", "end_to_end")
WORK = ("generate", "bronze", "silver", "gold")  # time spent inside each stage's task
NEWEST_FIRST = (BatchRow.generated_at.desc(), BatchRow.batch_id.desc())


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def batch_row(b: BatchRow) -> dict[str, Any]:
    """One batch with its stage timestamps, latencies (ms) and counts."""
    return {
        "batch_id": b.batch_id,
        "stream": b.stream,
        "seq": b.seq,
        "mode": b.mode,
        "status": b.status,
        "records": b.record_count,
        "valid": b.valid_count,
        "quarantined": b.corrupted_count,
        "injected": b.injected_count,
        "scheduled_at": _iso(b.scheduled_at),
        "generated_at": _iso(b.generated_at),
        "bronze_at": _iso(b.bronze_at),
        "silver_at": _iso(b.silver_at),
        "gold_at": _iso(b.gold_at),
        "latency_ms": layer_latencies(b),
        "work_ms": {
            "generate": _round(b.generate_ms),
            "bronze": _round(b.bronze_ms),
            "silver": _round(b.silver_ms),
            "gold": _round(b.gold_ms),
        },
        "worker": b.worker,
        "task_id": b.task_id,
        "error": b.error,
        "note": b.note,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def recent(session: Session, n: int = 20) -> list[dict[str, Any]]:
    return [
        batch_row(b) for b in session.scalars(select(BatchRow).order_by(*NEWEST_FIRST).limit(n))
    ]


def batches_page(
    session: Session,
    limit: int = 50,
    offset: int = 0,
    stream: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    """A page of batches, newest first, optionally of one stream and status."""
    where = [
        c
        for c in (
            BatchRow.stream == stream if stream else None,
            BatchRow.status == status if status else None,
        )
        if c is not None
    ]
    total = session.scalar(select(func.count()).select_from(BatchRow).where(*where)) or 0
    rows = session.scalars(
        select(BatchRow).where(*where).order_by(*NEWEST_FIRST).limit(limit).offset(offset)
    )
    items = [batch_row(b) for b in rows]
    more = offset + len(items) < total
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + len(items) if more else None,
        "items": items,
    }


def summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 50),
        "p95": percentile(ordered, 95),
        "max": ordered[-1],
    }


def latency(session: Session, batches: int = 100, stream: str | None = None) -> dict[str, Any]:
    """p50/p95/max per layer (ms) over the `batches` most recent batches (a window that means
    the same in emulated and production mode); a stage not reached yet is left out."""
    query = (
        select(
            BatchRow.scheduled_at,
            BatchRow.generated_at,
            BatchRow.bronze_at,
            BatchRow.silver_at,
            BatchRow.gold_at,
            BatchRow.generate_ms,
            BatchRow.bronze_ms,
            BatchRow.silver_ms,
            BatchRow.gold_ms,
        )
        .order_by(*NEWEST_FIRST)
        .limit(batches)
    )
    if stream:
        query = query.where(BatchRow.stream == stream)
    rows = session.execute(query).all()
    per_layer: dict[str, list[float]] = {layer: [] for layer in LAYERS}
    per_work: dict[str, list[float]] = {stage: [] for stage in WORK}
    for row in rows:
        for layer, value in layer_latencies(row).items():
            if value is not None:
                per_layer[layer].append(value)
        for stage in WORK:
            value = getattr(row, f"{stage}_ms")
            if value is not None:
                per_work[stage].append(round(value, 1))
    return {
        "window": {
            "batches": batches,
            "stream": stream,
            "count": len(rows),
            "from": _iso(rows[-1].generated_at) if rows else None,
            "to": _iso(rows[0].generated_at) if rows else None,
        },
        "unit": "ms",
        "layers": {layer: summary(values) for layer, values in per_layer.items()},
        "work": {stage: summary(values) for stage, values in per_work.items()},
    }
