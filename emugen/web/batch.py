"""One batch as its page shows it: found (or told apart from a pruned one), spec, timings."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from emugen.db.models import BatchRow
from emugen.errors import BatchNotFound, BatchPruned
from emugen.pipeline.reconcile import reconcile
from emugen.pipeline.retention import pruned_through
from emugen.status.batches import batch_row

# what /batches/<id> accepts: `events-000000042` (batch_id_for pads seqs to 9 digits)
BATCH_ID_PATTERN = r"^(companies|events)-[0-9]{9,18}$"


def span(value: timedelta) -> str:
    """A retention period as people say it: "1 day", "12 hours", "90 minutes"."""
    seconds = int(value.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return f"{seconds} seconds"


def find_batch(session: Session, batch_id: str, retain_for: timedelta | None) -> BatchRow:
    """The batch, or BatchPruned when retention deleted it, or BatchNotFound."""
    batch = session.get(BatchRow, batch_id)
    if batch is not None:
        return batch
    stream, _, seq = batch_id.rpartition("-")
    if seq.isdigit() and int(seq) <= pruned_through(session, stream):
        keeps = f"keeps {span(retain_for)}" if retain_for is not None else "retention is off now"
        raise BatchPruned(
            f"batch {batch_id} was pruned by retention ({keeps}; "
            "fleet.retain_batches_for): its gold counts stay, its rows are gone"
        )
    raise BatchNotFound(
        f"no batch {batch_id}: the store never held it (or it was cleaned); "
        "GET /api/batches lists the batches there are"
    )


def batch_detail(session: Session, batch: BatchRow) -> dict[str, Any]:
    """The batch's row (stage times, worker, status), its spec and its reconciliation."""
    return {
        **batch_row(batch),
        "spec": json.loads(batch.spec),
        "injected_by_type": json.loads(batch.injected_by_type or "{}"),
        "quarantined_by_reason": json.loads(batch.quarantined_by_reason or "{}"),
        "reconcile": reconcile(session, batch.batch_id).as_dict(),
    }
