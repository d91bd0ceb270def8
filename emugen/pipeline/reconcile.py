"""Reconciliation: the injected truth against what silver quarantined, per defect type."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from emugen.db.models import BatchRow, InjectedDefect, Quarantine
from emugen.pipeline.stage import StageResult, since_ms

REFINED = ("silver", "gold")
# a row's verdict -> the DefectTally counter it adds to (clean rows and false alarms apart)
_TALLIED = {
    "pending": "pending",
    "escaped": "missed",
    "lost": "missed",
    "caught": "caught",
    "mismatch": "wrong_reason",
}
Placement = tuple[str, str | None]  # (reason, field): what the truth expects or silver gave


def verdict(
    expected: Placement | None,
    quarantined: Placement | None,
    *,
    refined: bool,
    kept: bool = True,
    copy: bool = False,
) -> str:
    """One record's fate against the truth: pending (its batch has not reached silver),
    clean, caught (quarantined with the expected reason and field), mismatch (quarantined for
    another reason), escaped (defective yet kept in silver), false_alarm (clean yet
    quarantined), deduplicated (a redelivered `copy` silver dropped, as it should) or lost
    (in neither silver nor quarantine)."""
    if not refined:
        return "pending"
    if expected is None:
        if quarantined is not None:
            return "false_alarm"
        return "clean" if kept else "deduplicated" if copy else "lost"
    if quarantined is None:
        return "escaped" if kept else "deduplicated" if copy else "lost"
    return "caught" if quarantined == expected else "mismatch"


@dataclass
class DefectTally:
    injected: int = 0
    caught: int = 0  # quarantined with the expected reason
    wrong_reason: int = 0  # quarantined, but for another reason
    missed: int = 0  # escaped into silver: an alarm
    pending: int = 0  # its batch has not reached silver yet


@dataclass
class Reconciliation:
    by_defect: dict[str, DefectTally] = field(default_factory=dict)
    false_alarms: dict[str, int] = field(default_factory=dict)  # clean rows rejected, by reason
    # refined batches where landed != kept + quarantined + redelivered copies dropped
    unbalanced: dict[str, str] = field(default_factory=dict)

    @property
    def injected(self) -> int:
        return sum(t.injected for t in self.by_defect.values())

    @property
    def caught(self) -> int:
        return sum(t.caught for t in self.by_defect.values())

    @property
    def missed(self) -> int:
        return sum(t.missed for t in self.by_defect.values())

    @property
    def settled(self) -> int:
        return sum(t.injected - t.pending for t in self.by_defect.values())

    @property
    def caught_pct(self) -> float:
        """Share of settled defects caught with the right reason (100.0 with nothing to catch)."""
        return 100.0 * self.caught / self.settled if self.settled else 100.0

    @property
    def ok(self) -> bool:
        return self.caught == self.settled and not self.false_alarms and not self.unbalanced

    def as_dict(self) -> dict[str, Any]:
        shown = {"unbalanced": self.unbalanced} if self.unbalanced else {}
        return shown | {
            "injected": self.injected,
            "caught": self.caught,
            "missed": self.missed,
            "caught_pct": round(self.caught_pct, 3),
            "ok": self.ok,
            "false_alarms": self.false_alarms,
            "by_defect": {k: vars(v) for k, v in sorted(self.by_defect.items())},
        }


def reconcile(session: Session, batch_id: str | None = None) -> Reconciliation:
    """Tally every injected defect (one batch, or all) as caught, wrong, missed or pending."""
    scope = [] if batch_id is None else [InjectedDefect.batch_id == batch_id]
    joined = (
        select(
            InjectedDefect.defect,
            InjectedDefect.expected_reason,
            InjectedDefect.field,
            Quarantine.reason,
            Quarantine.field,
            BatchRow.status,
            func.count(),
        )
        .join(BatchRow, BatchRow.batch_id == InjectedDefect.batch_id)
        .outerjoin(
            Quarantine,
            and_(
                Quarantine.batch_id == InjectedDefect.batch_id,
                Quarantine.row_no == InjectedDefect.row_no,
            ),
        )
        .where(*scope)
        .group_by(
            InjectedDefect.defect,
            InjectedDefect.expected_reason,
            InjectedDefect.field,
            Quarantine.reason,
            Quarantine.field,
            BatchRow.status,
        )
    )
    result = Reconciliation()
    for defect, expected, want_field, reason, got_field, status, n in session.execute(joined):
        tally = result.by_defect.setdefault(defect, DefectTally())
        tally.injected += n
        found = verdict(
            (expected, want_field),
            None if reason is None else (reason, got_field),
            refined=status in REFINED,
        )
        counter = _TALLIED[found]
        setattr(tally, counter, getattr(tally, counter) + n)
    alarms = (
        select(Quarantine.reason, func.count())
        .outerjoin(
            InjectedDefect,
            and_(
                InjectedDefect.batch_id == Quarantine.batch_id,
                InjectedDefect.row_no == Quarantine.row_no,
            ),
        )
        .where(
            InjectedDefect.row_no.is_(None),
            *([] if batch_id is None else [Quarantine.batch_id == batch_id]),
        )
        .group_by(Quarantine.reason)
    )
    result.false_alarms = {reason: n for reason, n in session.execute(alarms)}
    result.unbalanced = _unbalanced(session, batch_id)
    return result


def _unbalanced(session: Session, batch_id: str | None) -> dict[str, str]:
    """Conservation per refined batch: every landed record is kept, quarantined or dropped as
    a redelivered copy. The batches where that does not add up, each with its sum."""
    dropped = func.coalesce(BatchRow.redelivered_count, 0)
    query = select(
        BatchRow.batch_id,
        BatchRow.record_count,
        BatchRow.valid_count,
        BatchRow.corrupted_count,
        dropped,
    ).where(
        BatchRow.status.in_(REFINED),
        BatchRow.valid_count.is_not(None),
        BatchRow.record_count != BatchRow.valid_count + BatchRow.corrupted_count + dropped,
        *([] if batch_id is None else [BatchRow.batch_id == batch_id]),
    )
    return {
        b: f"landed {n:,} != kept {k:,} + quarantined {q:,} + redelivered {r:,}"
        for b, n, k, q, r in session.execute(query)
    }


def run(session: Session, batch_id: str) -> StageResult:
    """The stage contract: the batch's injected defects in, those caught as expected out."""
    started = time.perf_counter()
    found = reconcile(session, batch_id)
    note = (
        "ok"
        if found.ok
        else (f"{found.missed} missed, {sum(found.false_alarms.values())} false alarms")
    )
    return StageResult(batch_id, "reconcile", found.injected, found.caught, since_ms(started), note)
