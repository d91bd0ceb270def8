"""The history charts: throughput, latency, defect rate and backlog per time bucket, in SQL."""

from __future__ import annotations

import secrets
import time
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Select,
    and_,
    case,
    func,
    literal,
    literal_column,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from emugen.db.models import BatchRow, InjectedDefect, Quarantine, SkippedTick
from emugen.db.timesql import bucket_of, millis_between
from emugen.vocabulary import Stream

# The window a chart covers, in seconds: each is cut into BUCKETS equal buckets, so a chart
# has at most BUCKETS points per series whatever the window (15 min: 7.5 s buckets).
WINDOWS = {"15m": 900, "1h": 3600, "24h": 86_400}
DEFAULT_WINDOW = "15m"
BUCKETS = 120
REFINED = ("silver", "gold")  # a batch's defects are settled (caught or not) from silver on
# A history is rebuilt at most this often, and never more often than COST_FACTOR times its own
# cost: its share of a core stays under 5 % however large the store grows.
MIN_REFRESH_S = 5.0
COST_FACTOR = 20


@dataclass(frozen=True)
class Frame:
    """The buckets of one window at one moment: aligned to the epoch, so a bucket keeps its
    bounds (and its value) from one refresh to the next; the last one is still filling."""

    window: str
    bucket_ms: int
    first: int  # bucket number (epoch ms // bucket_ms) of the oldest bucket shown
    now_ms: int

    @classmethod
    def of(cls, window: str, now: datetime) -> Frame:
        bucket_ms = WINDOWS[window] * 1000 // BUCKETS
        now_ms = int(now.timestamp() * 1000)
        return cls(window, bucket_ms, now_ms // bucket_ms - BUCKETS + 1, now_ms)

    @property
    def since(self) -> datetime:
        return datetime.fromtimestamp(self.first * self.bucket_ms / 1000, UTC)

    def within(self, column: Any) -> Any:
        """The column in the window's buckets: a row stamped later (another host's clock
        ahead of this one) would be a 121st point."""
        until = datetime.fromtimestamp((self.first + BUCKETS) * self.bucket_ms / 1000, UTC)
        return and_(column >= self.since, column < until)

    def bucket(self, column: Any) -> bucket_of:
        return bucket_of(column, literal_column(str(self.bucket_ms)))

    def start_ms(self, bucket: int) -> int:
        return int(bucket) * self.bucket_ms

    def elapsed_ms(self, bucket: int) -> int:
        """How much of the bucket has passed: all of it, but for the last one."""
        return min(self.bucket_ms, self.now_ms - self.start_ms(bucket))


# -- one query per chart ---------------------------------------------------------------------


def throughput_query(frame: Frame) -> Select[int, str, int]:
    b = frame.bucket(BatchRow.generated_at)
    return (
        select(b, BatchRow.stream, func.count())
        .where(frame.within(BatchRow.generated_at))
        .group_by(b, BatchRow.stream)
    )


def latency_query(frame: Frame) -> Select[Any]:
    """Nearest-rank p50/p95 of tick -> gold per bucket (emugen.status.stats.percentile, in SQL):
    the value ranked ceil(p * n) in its bucket, by window functions both databases have."""
    timed = (
        select(
            frame.bucket(BatchRow.generated_at).label("b"),
            millis_between(BatchRow.scheduled_at, BatchRow.gold_at).label("ms"),
        )
        .where(frame.within(BatchRow.generated_at), BatchRow.gold_at.is_not(None))
        .subquery()
    )
    # over the subquery's columns, both over one window (the same partition, order and
    # frame): one sort, and the times parsed once (4x faster on SQLite than over expressions)
    ranked = select(
        timed.c.b,
        timed.c.ms,
        func.row_number()
        .over(partition_by=timed.c.b, order_by=timed.c.ms, rows=(None, None))
        .label("rn"),
        func.count()
        .over(partition_by=timed.c.b, order_by=timed.c.ms, rows=(None, None))
        .label("n"),
    ).subquery()
    rn, n, value = ranked.c.rn, ranked.c.n, ranked.c.ms
    return select(
        ranked.c.b,
        func.max(n),
        func.max(case((rn == (n + 1) // 2, value))),
        func.max(case((rn == (95 * n + 99) // 100, value))),
    ).group_by(ranked.c.b)


def defects_query(frame: Frame) -> Select[Any]:
    """Records, injected and caught (quarantined with the expected reason and field, as
    reconcile counts it) per bucket, over batches that reached silver."""
    caught = (
        select(func.count())
        .select_from(InjectedDefect)
        .join(
            Quarantine,
            and_(
                Quarantine.batch_id == InjectedDefect.batch_id,
                Quarantine.row_no == InjectedDefect.row_no,
            ),
        )
        .where(
            InjectedDefect.batch_id == BatchRow.batch_id,
            Quarantine.reason == InjectedDefect.expected_reason,
            Quarantine.field.is_not_distinct_from(InjectedDefect.field),
        )
        .correlate(BatchRow)
        .scalar_subquery()
    )
    # the status test sits in the columns, not in WHERE: there it would lead SQLite to the
    # status index, which holds every batch ever refined (the window's range is far smaller)
    settled = BatchRow.status.in_(REFINED)
    per_batch = (
        select(
            frame.bucket(BatchRow.generated_at).label("b"),
            case((settled, BatchRow.record_count), else_=0).label("records"),
            case((settled, BatchRow.injected_count), else_=0).label("injected"),
            # a clean or unsettled batch needs no probe of the truth table
            case((and_(settled, BatchRow.injected_count > 0), caught), else_=0).label("caught"),
        )
        .where(frame.within(BatchRow.generated_at))
        .subquery()
    )
    return select(
        per_batch.c.b,
        func.sum(per_batch.c.records),
        func.sum(per_batch.c.injected),
        func.sum(per_batch.c.caught),
    ).group_by(per_batch.c.b)


def backlog_query(frame: Frame) -> Any:
    """Per bucket: the deepest pipeline queue a worker saw, and the ticks skipped."""
    b = frame.bucket(BatchRow.generated_at)
    depth = (
        select(
            b.label("b"), func.max(BatchRow.queue_depth).label("depth"), literal(0).label("skipped")
        )
        .where(frame.within(BatchRow.generated_at))
        .group_by(b)
    )
    s = frame.bucket(SkippedTick.at)
    skipped = (
        select(
            s.label("b"), literal(None, BigInteger).label("depth"), func.count().label("skipped")
        )
        .where(frame.within(SkippedTick.at))
        .group_by(s)
    )
    return union_all(depth, skipped)


# -- shaping ---------------------------------------------------------------------------------


def _chart(title: str, unit: str, names: list[str]) -> dict[str, Any]:
    return {"title": title, "unit": unit, "series": {name: [] for name in names}}


def throughput(session: Session, frame: Frame) -> dict[str, Any]:
    chart = _chart("Batches per minute per stream", "batches/min", [s.value for s in Stream])
    counts: dict[int, dict[str, int]] = {}
    for bucket, stream, n in session.execute(throughput_query(frame)):
        counts.setdefault(int(bucket), {})[stream] = int(n)
    for bucket in sorted(counts):
        elapsed = frame.elapsed_ms(bucket)
        if elapsed * 4 < frame.bucket_ms:
            continue  # the bucket that just began: too short a span to be a rate
        for stream, points in chart["series"].items():
            rate = counts[bucket].get(stream, 0) * 60_000 / elapsed
            points.append([frame.start_ms(bucket), round(rate, 2)])
    return chart


def latency(session: Session, frame: Frame) -> dict[str, Any]:
    chart = _chart("Tick to gold latency", "ms", ["p50", "p95"])
    for bucket, _, p50, p95 in sorted(session.execute(latency_query(frame)).all()):
        chart["series"]["p50"].append([frame.start_ms(bucket), round(float(p50), 1)])
        chart["series"]["p95"].append([frame.start_ms(bucket), round(float(p95), 1)])
    return chart


def defects(session: Session, frame: Frame) -> dict[str, Any]:
    chart = _chart("Defect rate: injected vs caught", "% of records", ["injected", "caught"])
    sums: dict[int, list[int]] = {}
    for bucket, *counts in session.execute(defects_query(frame)):
        tally = sums.setdefault(int(bucket), [0, 0, 0])
        for i, n in enumerate(counts):
            tally[i] += int(n or 0)
    for bucket, (records, injected, caught) in sorted(sums.items()):
        if records:  # no batch of the bucket reached silver yet
            at = frame.start_ms(bucket)
            chart["series"]["injected"].append([at, round(100.0 * injected / records, 2)])
            chart["series"]["caught"].append([at, round(100.0 * caught / records, 2)])
    return chart


def backlog(session: Session, frame: Frame) -> dict[str, Any]:
    chart = _chart(
        "Pipeline queue depth and skipped ticks",
        "messages or ticks",
        ["queue depth", "skipped ticks"],
    )
    depth: dict[int, int | None] = {}
    skipped: dict[int, int] = {}
    for bucket, deepest, n in session.execute(backlog_query(frame)):
        bucket = int(bucket)
        if deepest is not None:
            depth[bucket] = max(int(deepest), depth.get(bucket) or 0)
        else:
            depth.setdefault(bucket, None)
        skipped[bucket] = skipped.get(bucket, 0) + int(n)
    for bucket in sorted(skipped):
        at = frame.start_ms(bucket)
        if depth[bucket] is not None:  # no batch (or one landed in-process): no sample
            chart["series"]["queue depth"].append([at, depth[bucket]])
        chart["series"]["skipped ticks"].append([at, skipped[bucket]])
    return chart


CHARTS = {"throughput": throughput, "latency": latency, "defects": defects, "backlog": backlog}


def history(
    session: Session, window: str = DEFAULT_WINDOW, now: datetime | None = None
) -> dict[str, Any]:
    """Every chart of `window` (15m, 1h or 24h): points are [bucket start in epoch ms, value],
    only for buckets that hold data; at most BUCKETS per series."""
    now = now or datetime.now(UTC)
    frame = Frame.of(window, now)
    if session.get_bind().dialect.name == "postgresql":
        # PostgreSQL JIT-compiles a query it costs high (the defects chart's subquery per
        # batch): ~40 ms of compiling for a query that runs in ~15 ms. This transaction only.
        session.execute(text("SET LOCAL jit = off"))
    return {
        "window": window,
        "window_s": WINDOWS[window],
        "buckets": BUCKETS,
        "bucket_s": frame.bucket_ms / 1000,
        "from": frame.since.isoformat(),
        "to": now.isoformat(),
        "charts": {name: build(session, frame) for name, build in CHARTS.items()},
    }


def status_counts(session: Session) -> tuple[tuple[str, int], ...]:
    """Batches per status, in status order: read from the status index alone."""
    return tuple(
        (status, n)
        for status, n in session.execute(
            select(BatchRow.status, func.count())
            .group_by(BatchRow.status)
            .order_by(BatchRow.status)
        ).all()
    )


def history_key(
    session: Session, by_status: tuple[tuple[str, int], ...] | None = None
) -> tuple[Any, ...]:
    """Changes whenever a history could: a batch moves on (or lands, or goes), a tick is
    skipped. `by_status`: status_counts already read by the caller."""
    if by_status is None:
        by_status = status_counts(session)
    return by_status, session.scalar(select(func.max(SkippedTick.id)))


@dataclass
class _Built:
    key: Hashable
    data: dict[str, Any]
    at: float  # time.monotonic() when it was built
    cost: float  # seconds it took


class HistoryCache:
    """The last history of each window, shared by every client: rebuilt when the store has
    changed, at most every MIN_REFRESH_S s and never more often than COST_FACTOR times its
    own cost (a day's history on a large store is not rebuilt per commit)."""

    def __init__(self) -> None:
        self._built: dict[str, _Built] = {}
        self._builds = 0
        self._boot = secrets.token_hex(3)  # a restarted server's stamps never match old ones

    def may_refresh(self, window: str, key: Hashable) -> bool:
        """Would `get` rebuild now? (True when the cached one is stale and may be replaced.)"""
        built = self._built.get(window)
        if built is None:
            return True
        spacing = max(MIN_REFRESH_S, COST_FACTOR * built.cost)
        return built.key != key and time.monotonic() - built.at >= spacing

    def shown_key(self, window: str, key: Hashable) -> Hashable:
        """The key of the history `get` would hand out now: it changes when a held-back
        history may be rebuilt, so a snapshot poller notices even if the store stays still."""
        built = self._built.get(window)
        return key if built is None or self.may_refresh(window, key) else built.key

    def get(self, session: Session, window: str, key: Hashable) -> dict[str, Any]:
        if self.may_refresh(window, key):
            started = time.monotonic()
            data = history(session, window)
            self._builds += 1
            data["stamp"] = f"{self._boot}-{self._builds}"
            done = time.monotonic()
            self._built[window] = _Built(key, data, done, done - started)
        return self._built[window].data
