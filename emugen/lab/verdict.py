"""The soak and chaos criteria: what the store must hold after a run, and how the series behave.

Store criteria (always judged): no lost batch, no duplicate row, 100 % reconciliation, gold
equal to a from-scratch recomputation, every tick sent accounted for. Series criteria (judged
in a soak, reported in a chaos run): resident memory growth per process, p95 tick -> gold
latency in the last tenth against the first tenth after warm-up (1.2x, plus an allowance for
the sampling noise of a p95 over few batches, which matters only in short runs).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from emugen.db.models import (
    BatchRow,
    BronzeRecord,
    GoldCompanyWindow,
    GoldRegionWindow,
    Quarantine,
    SilverCompany,
    SilverEvent,
    SkippedTick,
)
from emugen.db.session import read_session
from emugen.pipeline.gold import company_windows, region_windows
from emugen.pipeline.reconcile import reconcile
from emugen.pipeline.retention import tally
from emugen.status.stats import percentile
from emugen.vocabulary import WINDOW_SECONDS, Mode

RSS_GROWTH_LIMIT = 1.10
LATENCY_GROWTH_LIMIT = 1.20
NOISE_MS_AT_36 = 20.0


@dataclass
class Check:
    name: str
    passed: bool | None  # None: reported, not judged
    detail: str

    def line(self) -> str:
        mark = {True: "PASS", False: "FAIL", None: "info"}[self.passed]
        return f"  [{mark}] {self.name}: {self.detail}"


def verdict(checks: list[Check]) -> bool:
    return all(c.passed is not False for c in checks)


def as_dicts(checks: list[Check]) -> list[dict[str, Any]]:
    return [asdict(c) for c in checks]


# -- the store -----------------------------------------------------------------------------


def _scalar(session: Any, query: Any) -> int:
    return int(session.scalar(query) or 0)


def batch_checks(engine: Engine) -> list[Check]:
    """Seqs 1..N per stream, all in gold; every layer's row count equals its batches' sums.

    Batches retention pruned count from its tally: the kept seqs plus the pruned batches
    must make 1..N (pruned batches were in gold, and each seq is pruned at most once)."""
    checks = []
    with read_session(engine) as session:
        pruned = tally(session)
        rows = session.execute(select(BatchRow.stream, BatchRow.seq, BatchRow.status)).all()
        by_stream: dict[str, list[tuple[int, str]]] = {}
        for stream, seq, status in rows:
            by_stream.setdefault(stream, []).append((seq, status))
        gaps, unfinished, parts = [], [], []
        for stream, found in sorted(by_stream.items()):
            found.sort()
            gone = pruned[stream]["batches"] if stream in ("events", "companies") else 0
            seqs = [s for s, _ in found]
            if seqs and gone + len(seqs) != seqs[-1] or len(set(seqs)) != len(seqs):
                gaps.append(f"{stream} seqs not 1..{seqs[-1]} ({len(seqs)} kept, {gone} pruned)")
            unfinished += [f"{stream}-{s} {st}" for s, st in found if st != "gold"]
            parts.append(f"{stream} 1..{seqs[-1]}" + (f" ({gone} pruned)" if gone else ""))
        lost = gaps + unfinished
        checks.append(
            Check(
                "no lost batch",
                bool(by_stream) and not lost,
                ("every seq in gold: " + ", ".join(parts))
                if not lost and by_stream
                else "; ".join(lost[:10]) or "no batch at all",
            )
        )

        sums = session.execute(
            select(func.sum(BatchRow.record_count), func.sum(BatchRow.corrupted_count))
        ).one()
        valid = dict(
            session.execute(
                select(BatchRow.stream, func.sum(BatchRow.valid_count)).group_by(BatchRow.stream)
            ).all()
        )
        pairs = {
            "bronze_records": (
                _scalar(session, select(func.count()).select_from(BronzeRecord)),
                int(sums[0] or 0),
            ),
            # the company dimension outlives its pruned batches
            "silver_companies": (
                _scalar(session, select(func.count()).select_from(SilverCompany)),
                int(valid.get("companies") or 0) + pruned["companies"]["valid"],
            ),
            "silver_events": (
                _scalar(session, select(func.count()).select_from(SilverEvent)),
                int(valid.get("events") or 0),
            ),
            "quarantine": (
                _scalar(session, select(func.count()).select_from(Quarantine)),
                int(sums[1] or 0),
            ),
        }
    bad = {k: v for k, v in pairs.items() if v[0] != v[1]}
    checks.append(
        Check(
            "no duplicate row",
            not bad,
            ", ".join(
                f"{k} {have} rows vs {want} in batch counts"
                for k, (have, want) in (bad or pairs).items()
            ),
        )
    )
    return checks


def reconciliation_check(engine: Engine) -> Check:
    with read_session(engine) as session:
        r = reconcile(session)
    pending = sum(t.pending for t in r.by_defect.values())
    ok = r.ok and r.caught_pct == 100.0 and pending == 0
    return Check(
        "100 % reconciliation",
        ok,
        f"injected {r.injected}, caught {r.caught} ({r.caught_pct:.2f} %), missed "
        f"{r.missed}, false alarms {sum(r.false_alarms.values())}, pending {pending}",
    )


def gold_check(engine: Engine, mode: Mode = Mode.emulated) -> Check:
    """Gold equals a recomputation of every window of `mode` from silver (nothing
    double-counted).

    Windows up to the latest event retention pruned cannot be recomputed: they are left out,
    and the detail says from where gold was judged."""
    seconds = WINDOW_SECONDS[mode]
    width = seconds * 1000
    with read_session(engine) as session:
        pruned_ms = tally(session)["events_max_ms"]
        since = -(2**62) if pruned_ms is None else (pruned_ms // width + 1) * width
        stamps = set(session.scalars(select(SilverEvent.event_ms)))
        stamps |= set(session.scalars(select(SilverCompany.onboarded_ms)))
        want_c, want_r = [], []
        for start in sorted({s // width * width for s in stamps}):
            if start >= since:
                want_c += company_windows(session, seconds, start)
                want_r += region_windows(session, seconds, start)
        have_c = session.execute(
            select(*GoldCompanyWindow.__table__.c).where(
                GoldCompanyWindow.window_seconds == seconds,
                GoldCompanyWindow.window_start_ms >= since,
            )
        ).all()
        have_r = session.execute(
            select(*GoldRegionWindow.__table__.c).where(
                GoldRegionWindow.window_seconds == seconds,
                GoldRegionWindow.window_start_ms >= since,
            )
        ).all()

    def key(rows: Sequence[Any]) -> list[tuple[Any, ...]]:
        return sorted((tuple(r) for r in rows), key=repr)

    ok = key(want_c) == key(have_c) and key(want_r) == key(have_r)
    return Check(
        "gold equals a recomputation from silver",
        ok,
        f"{len(have_c)} company windows, {len(have_r)} region windows"
        + (
            ""
            if pruned_ms is None
            else f" from {datetime.fromtimestamp(since / 1000, UTC):%H:%M:%S} UTC (earlier "
            "windows hold pruned events)"
        )
        + ("" if ok else f"; recomputed {len(want_c)} / {len(want_r)}"),
    )


def skip_counts(engine: Engine) -> dict[str, int]:
    with read_session(engine) as session:
        return dict(
            session.execute(
                select(SkippedTick.reason, func.count()).group_by(SkippedTick.reason)
            ).all()
        )


def tick_check(engine: Engine, beat_log: str, judged: bool) -> Check:
    """Every tick beat sent is a batch or a skipped_ticks row.

    Beat logs each tick it sends and each one it skips for backpressure; after the run the
    fleet is paused, and those ticks (skipped at beat, never sent) are left out.
    """
    sent = sum(1 for line in beat_log.splitlines() if "Sending due task generate-" in line)
    beat_gate = sum(1 for line in beat_log.splitlines() if "tick skipped:" in line)
    with read_session(engine) as session:
        pruned = tally(session)
        batches = (
            _scalar(session, select(func.count()).select_from(BatchRow))
            + pruned["events"]["batches"]
            + pruned["companies"]["batches"]
        )
        skips = (
            _scalar(session, select(func.count()).select_from(SkippedTick))
            + pruned["skipped_ticks"]
        )
        beat_paused = _scalar(
            session,
            select(func.count())
            .select_from(SkippedTick)
            .where(SkippedTick.detail == "the fleet is paused"),
        )
    at_worker = skips - beat_gate - beat_paused
    unaccounted = sent - batches - at_worker
    return Check(
        "every tick sent is a batch or a recorded skip",
        (unaccounted == 0) if judged else None,
        f"beat sent {sent} ticks: {batches} batches, {at_worker} skipped at a worker, "
        f"{unaccounted} unaccounted; beat also skipped {beat_gate} for backpressure "
        f"and {beat_paused} while paused for the drain",
    )


# -- series --------------------------------------------------------------------------------


def tenth(values: list[tuple[float, float]], index: int, duration: float) -> list[float]:
    """The values whose time lies in tenth `index` (0..9) of [0, duration)."""
    low, high = duration * index / 10, duration * (index + 1) / 10
    return [v for t, v in values if low <= t < high]


def rss_checks(
    samples: list[dict[str, Any]], roles: list[str], duration: float, judged: bool
) -> list[Check]:
    """Median RSS of the second tenth (after warm-up) against the last tenth, per process."""
    checks = []
    for role in roles:
        series = [
            (s["t"], s[f"rss_{role}_mb"]) for s in samples if s.get(f"rss_{role}_mb") is not None
        ]
        early, late = tenth(series, 1, duration), tenth(series, 9, duration)
        if not early or not late:
            checks.append(Check(f"RSS {role}", None, "not enough samples"))
            continue
        a, b = statistics.median(early), statistics.median(late)
        ratio = b / a if a else float("inf")
        checks.append(
            Check(
                f"RSS growth {role} <= {RSS_GROWTH_LIMIT - 1:.0%}",
                ratio <= RSS_GROWTH_LIMIT if judged else None,
                f"{a:.1f} MB -> {b:.1f} MB ({ratio - 1:+.1%})",
            )
        )
    return checks


def latencies(
    engine: Engine, t0: datetime, seen: dict[str, tuple[datetime, datetime]] | None = None
) -> list[tuple[float, float]]:
    """(seconds after t0 the tick was due, tick -> gold ms) of every batch in gold, and of the
    batches `seen` in gold during the run (retention may have pruned them since)."""
    found: dict[str, tuple[datetime, datetime | None]] = dict(seen or {})
    with read_session(engine) as session:
        for batch_id, at, gold in session.execute(
            select(BatchRow.batch_id, BatchRow.scheduled_at, BatchRow.gold_at).where(
                BatchRow.status == "gold"
            )
        ):
            found[batch_id] = (at, gold)
    return sorted(
        ((at - t0).total_seconds(), gold_latency_ms(at, gold)) for at, gold in found.values()
    )


def gold_latency_ms(scheduled_at: datetime, gold_at: datetime | None) -> float:
    """Tick -> gold milliseconds of a batch in gold (gold sets gold_at with the status)."""
    assert gold_at is not None, "a batch in gold has a gold_at"
    return (gold_at - scheduled_at).total_seconds() * 1000


def noise_allowance_ms(batches: int) -> float:
    """Sampling noise of a p95 over `batches` batches: 20 ms at 36 (a 3-minute soak's tenth at
    1 s, where tenth-to-tenth p95s without any trend ranged 48-64 ms on the shared 2-core
    machine), shrinking as 1/sqrt(n): 4.5 ms for the 720 batches of a 60-minute soak's tenth."""
    return NOISE_MS_AT_36 * math.sqrt(36 / max(batches, 1))


def latency_check(
    series: list[tuple[float, float]],
    duration: float,
    warmup: float,
    judged: bool,
    strict: bool = False,
) -> Check:
    """p95 of the last tenth against the first tenth of the run after `warmup` seconds,
    within LATENCY_GROWTH_LIMIT plus the sampling-noise allowance of tenths that size
    (`strict`: without the allowance)."""
    first = [v for t, v in series if warmup <= t < warmup + duration / 10]
    last = tenth(series, 9, duration)
    if not first or not last:
        return Check("p95 latency stable", None, "not enough batches")
    a, b = percentile(first, 95), percentile(last, 95)
    noise = 0.0 if strict else noise_allowance_ms(min(len(first), len(last)))
    limit = LATENCY_GROWTH_LIMIT * a + noise
    ratio = b / a if a else float("inf")
    rule = f"{LATENCY_GROWTH_LIMIT:g} x {a:.1f}" + ("" if strict else f" + {noise:.1f}")
    return Check(
        f"p95 tick->gold last tenth <= {LATENCY_GROWTH_LIMIT:g}x first tenth "
        + ("(strict: no noise allowance)" if strict else "(+ sampling noise)"),
        b <= limit if judged else None,
        f"{a:.1f} ms ({len(first)} batches after {warmup:.0f} s warm-up) -> "
        f"{b:.1f} ms ({len(last)} batches), {ratio:.2f}x; limit "
        f"{rule} = {limit:.1f} ms",
    )
