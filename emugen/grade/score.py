"""Scoring: per stream and defect, caught / escaped / lost / false alarms, and the CI gate."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import duckdb

from emugen.grade.match import FALSE_ALARMS, batch_list
from emugen.grade.strays import extra_examples

MISSES = ("escaped", "lost", *FALSE_ALARMS)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class DefectScore:
    injected: int = 0
    pending: int = 0  # its batch is past the last one the consumer reached
    unmatched: int = 0  # id mode only: the defect removed the id, so it cannot be placed
    caught: int = 0  # rejected (or, when dedupe drops, a duplicate copy dropped)
    escaped: int = 0  # kept in the consumer's silver
    lost: int = 0  # neither kept nor rejected

    @property
    def settled(self) -> int:
        return self.injected - self.pending - self.unmatched

    @property
    def recall(self) -> float | None:
        return _ratio(self.caught, self.settled)


@dataclass
class StreamScore:
    records: int = 0
    pending_records: int = 0
    pending_batches: int = 0
    last_batch: str | None = None  # the latest batch the consumer's output mentions
    latest_batch: str | None = None  # the latest batch in the truth
    kept: int = 0  # clean records kept: correct
    lost_clean: int = 0  # clean records neither kept nor rejected
    false_alarms: int = 0  # clean records rejected
    unmatched_clean: int = 0
    extra: int = 0  # consumer rows that match no record at all
    duplicated: int = 0  # consumer rows repeating a record it already had
    no_id: int = 0  # consumer rows with no id (id mode): cannot be placed
    late_rejected: int = 0  # false alarms on records that arrived late (valid data)
    drift_rejected: int = 0  # false alarms on records carrying the drift's new field
    drift_from: str | None = None  # the batch the new schema starts at (the arrival ledger)
    held_batches: int = 0  # delayed batches whose file is not released yet: pending, not lost
    by_defect: dict[str, DefectScore] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        """Records that vanished: neither kept nor rejected, clean or not."""
        return self.lost_clean + sum(d.lost for d in self.by_defect.values())

    @property
    def caught(self) -> int:
        return sum(d.caught for d in self.by_defect.values())

    @property
    def recall(self) -> float | None:
        return _ratio(self.caught, sum(d.settled for d in self.by_defect.values()))

    @property
    def precision(self) -> float | None:
        return _ratio(self.caught, self.caught + self.false_alarms)


@dataclass
class Grade:
    match: str
    duplicates: str
    streams: dict[str, StreamScore] = field(default_factory=dict)
    examples: list[dict] = field(default_factory=list)
    extras: list[dict] = field(default_factory=list)  # first extra rows of each stream

    def _sum(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.streams.values())

    @property
    def recall(self) -> float | None:
        settled = sum(d.settled for s in self.streams.values() for d in s.by_defect.values())
        return _ratio(self._sum("caught"), settled)

    @property
    def precision(self) -> float | None:
        return _ratio(self._sum("caught"), self._sum("caught") + self._sum("false_alarms"))

    @property
    def settled_records(self) -> int:
        return self._sum("records") - self._sum("pending_records")

    def gate(
        self,
        min_recall: float | None,
        min_precision: float | None,
        max_lost: int | None = 0,
        max_extra: int | None = 0,
    ) -> list[str]:
        """Why this grade fails the CI gate (empty when it passes): recall or precision below
        their floors, more clean records lost (neither kept nor rejected) than `max_lost`, or
        more extra rows (matching no landed record) than `max_extra`."""
        if self.settled_records == 0:
            return ["nothing to grade: the consumer's output mentions no batch yet"]
        failures = []
        for name, floor, value in (
            ("recall", min_recall, self.recall),
            ("precision", min_precision, self.precision),
        ):
            if floor is not None and value is not None and value < floor:
                failures.append(f"{name} {value:.4f} < {floor:g}")
        if max_lost is not None and self.lost_clean > max_lost:
            failures.append(f"clean lost {self.lost_clean:,} > {max_lost:,} (--max-lost)")
        extra = self._sum("extra")
        if max_extra is not None and extra > max_extra:
            failures.append(
                f"extra rows {extra:,} > {max_extra:,} (--max-extra): rows whose lineage "
                "emugen never landed"
            )
        return failures

    @property
    def lost_clean(self) -> int:
        """Clean records the consumer neither kept nor rejected, over every stream."""
        return self._sum("lost_clean")

    def as_dict(self) -> dict:
        streams = {}
        for name, s in sorted(self.streams.items()):
            body = {k: v for k, v in asdict(s).items() if k != "by_defect"}
            body.update(
                recall=s.recall,
                precision=s.precision,
                caught=s.caught,
                lost=s.lost,
                by_defect={
                    d: {**asdict(v), "recall": v.recall} for d, v in sorted(s.by_defect.items())
                },
            )
            streams[name] = body
        return {
            "match": self.match,
            "duplicates": self.duplicates,
            "recall": self.recall,
            "precision": self.precision,
            "settled_records": self.settled_records,
            "lost_clean": self.lost_clean,
            "streams": streams,
            "examples": self.examples,
            "extra_examples": self.extras,
        }


def score(con: duckdb.DuckDBPyConnection, match: str, duplicates: str, examples: int = 5) -> Grade:
    """Read the `tally` and `strays` tables that grade.match built into a Grade."""
    grade = Grade(match, duplicates)
    for stream, defect, status, n in con.execute(
        "SELECT stream, defect, status, sum(n)::BIGINT FROM tally GROUP BY ALL"
    ).fetchall():
        s = grade.streams.setdefault(stream, StreamScore())
        s.records += n
        if status == "pending":
            s.pending_records += n
        if defect is None:
            _clean(s, status, n)
            continue
        d = s.by_defect.setdefault(defect, DefectScore())
        d.injected += n
        if status in ("pending", "unmatched", "caught", "escaped", "lost"):
            setattr(d, status, getattr(d, status) + n)
    for stream, pending, held, last, latest in con.execute(
        # a batch is pending when all of it is (a redelivered copy waiting for its original
        # is pending in a batch that is not)
        "SELECT stream, count(*) FILTER (WHERE pending), count(*) FILTER (WHERE held), "
        "max(batch_id) FILTER (WHERE NOT pending), max(batch_id) FROM ("
        "SELECT stream, batch_id, bool_and(pending) AS pending, bool_or(held) AS held "
        "FROM tally GROUP BY ALL) GROUP BY ALL"
    ).fetchall():
        s = grade.streams[stream]
        s.pending_batches, s.held_batches, s.last_batch, s.latest_batch = (
            pending,
            held,
            last,
            latest,
        )
    for stream, batch_id in con.execute("SELECT stream, batch_id FROM drifts").fetchall():
        if stream in grade.streams:
            grade.streams[stream].drift_from = batch_id
    for stream, extra, no_id, duplicated in con.execute(
        "SELECT stream, extra, no_id, duplicated FROM strays"
    ).fetchall():
        s = grade.streams.setdefault(stream, StreamScore())
        s.extra, s.no_id, s.duplicated = int(extra), int(no_id), int(duplicated)
    if examples:
        grade.examples = first_misses(con, examples)
        if any(s.extra for s in grade.streams.values()):
            grade.extras = extra_examples(con, match, examples)
    return grade


CLEAN = {
    "kept": ("kept",),
    "lost": ("lost_clean",),
    "false_alarm": ("false_alarms",),
    "rejected_late": ("false_alarms", "late_rejected"),
    "rejected_drift": ("false_alarms", "drift_rejected"),
    "unmatched": ("unmatched_clean",),
}


def _clean(s: StreamScore, status: str, n: int) -> None:
    """Count `n` clean records of fate `status` (a late or drifted one rejected is a false
    alarm, counted under its cause too)."""
    for attr in CLEAN.get(status, ()):
        setattr(s, attr, getattr(s, attr) + n)


def first_misses(con: duckdb.DuckDBPyConnection, limit: int) -> list[dict]:
    """The first `limit` records of each (stream, miss, defect), raw text and defect included.

    `tally` carries the first row numbers of every (batch, fate) group, so only those few
    records are read again, from the batches that hold them.
    """
    con.execute(f"""
        CREATE OR REPLACE TABLE firsts AS
        SELECT * FROM (
            SELECT stream, status AS miss, defect, batch_id, row_no,
                   row_number() OVER (PARTITION BY stream, status, defect
                                      ORDER BY batch_id, row_no) AS k
            FROM (SELECT stream, status, defect, batch_id, unnest(firsts) AS row_no
                  FROM tally WHERE status IN {MISSES}))
        WHERE k <= {int(limit)}
    """)
    # literal ids, not a subquery: a constant list prunes Parquet row groups by their stats
    batches = batch_list(con, "SELECT DISTINCT batch_id FROM firsts")
    cursor = con.execute(f"""
        SELECT m.stream, m.miss, m.defect, m.batch_id, m.row_no, d.natural_id, d.field,
               d.original, d.injected, d.expected_reason, d.payload
        FROM firsts m JOIN (SELECT * FROM truth_detail WHERE batch_id IN ({batches})) d
             USING (batch_id, row_no)
        ORDER BY m.stream, m.miss, m.defect NULLS FIRST, m.batch_id, m.row_no
    """)
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
