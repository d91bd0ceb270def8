"""Replay: regenerate a landed batch from its stored spec and compare it with bronze."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import zip_longest

from sqlalchemy import select
from sqlalchemy.orm import Session

from emugen.db.models import BatchRow, BronzeRecord, InjectedDefect
from emugen.errors import BatchNotFound, EmugenError
from emugen.generate import GENERATOR_VERSION, BatchSpec, draft, gc_paused
from emugen.pipeline.arrivals import ledger_rows, recorded_ledger
from emugen.pipeline.watermark import load_exclusions

_SHOWN = 5


@dataclass
class ReplayReport:
    batch_id: str
    rows: int = 0
    differing: list[int] = field(default_factory=list)  # row numbers whose bytes differ
    missing: int = 0  # rows the regenerated batch has and bronze lacks
    extra: int = 0  # rows bronze has and the regenerated batch lacks
    truth_matches: bool = True
    ledger_matches: bool = True  # the arrival ledger

    @property
    def identical(self) -> bool:
        return (
            not (self.differing or self.missing or self.extra)
            and self.truth_matches
            and self.ledger_matches
        )

    def summary(self) -> str:
        if self.identical:
            return (
                f"{self.batch_id}: identical ({self.rows} rows, the truth and the arrival "
                "ledger regenerated)"
            )
        parts = []
        if self.differing:
            shown = ", ".join(map(str, self.differing[:_SHOWN]))
            extra = len(self.differing) - _SHOWN
            more = f" and {extra} more" if extra > 0 else ""
            parts.append(f"{len(self.differing)} rows differ (row {shown}{more})")
        if self.missing:
            parts.append(f"{self.missing} rows missing from bronze")
        if self.extra:
            parts.append(f"{self.extra} rows in bronze that the spec does not produce")
        if not self.truth_matches:
            parts.append("the recorded truth differs from the regenerated truth")
        if not self.ledger_matches:
            parts.append("the recorded arrival ledger differs from the regenerated one")
        return f"{self.batch_id}: DIFFERENT: " + "; ".join(parts)


def replay(session: Session, batch_id: str) -> ReplayReport:
    batch = session.get(BatchRow, batch_id)
    if batch is None:
        raise BatchNotFound(f"no batch {batch_id!r}; `emugen status` lists the latest batches")
    if batch.generator_version != GENERATOR_VERSION:
        raise EmugenError(
            f"batch {batch_id} was made by generator version {batch.generator_version}, this "
            f"emugen has version {GENERATOR_VERSION}; replay it with the emugen that made it"
        )
    spec = BatchSpec.model_validate_json(batch.spec)
    load_exclusions(session, spec)
    report = ReplayReport(batch_id)
    stored = session.execute(
        select(BronzeRecord.row_no, BronzeRecord.payload)
        .where(BronzeRecord.batch_id == batch_id)
        .order_by(BronzeRecord.row_no)
    )
    with gc_paused():
        planned = draft(spec)
        fresh = (line for lines in planned.line_chunks() for line in lines)
        for row_no, (mine, theirs) in enumerate(zip_longest(fresh, stored)):
            if theirs is None:
                report.missing += 1
            elif mine is None:
                report.extra += 1
            elif mine != theirs.payload or theirs.row_no != row_no:
                report.differing.append(row_no)
            report.rows += 1
    recorded = session.execute(
        select(
            InjectedDefect.row_no,
            InjectedDefect.defect,
            InjectedDefect.field,
            InjectedDefect.original,
            InjectedDefect.injected,
        )
        .where(InjectedDefect.batch_id == batch_id)
        .order_by(InjectedDefect.row_no)
    ).all()
    regenerated = [
        (t.row_no, t.defect.value, t.field, t.original, t.injected) for t in planned.truth
    ]
    report.truth_matches = [tuple(r) for r in recorded] == regenerated
    report.ledger_matches = recorded_ledger(session, batch_id) == ledger_rows(batch_id, planned)
    return report
