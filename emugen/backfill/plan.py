"""A backfill's plan: every tick of a range on the simulated clock, each spec known up front.

Pure: no store, no broker. The company watermark of an event tick follows from the clock (the
company batches scheduled strictly before it), and the companies silver will reject follow
from those batches' specs (they are generated and checked by the contract here, as silver
would), so every spec is known before any batch exists. The rejected companies go into one
exclusion ledger that event specs name prefixes of (generate/exclusions.py), and the ticks
are kept as columns (ticks.py): a ten-year plan stays within a few megabytes of the process.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice

import numpy as np

from emugen.backfill.ticks import Maker, Tick, TickBuilder, TickColumns
from emugen.contract import Context, Rejection, check, parse
from emugen.errors import BackfillInputError
from emugen.generate import BatchSpec, batch_size, build_spec, draft, gc_paused, to_lines
from emugen.generate.companies import CompanyColumns
from emugen.generate.exclusions import Ledger
from emugen.generate.quality import Layout
from emugen.settings import Settings, parse_settings
from emugen.vocabulary import Mode, Stream

MAX_TICKS = 1_000_000  # a year of 15-minute ticks is 35,040; far past this is a typo


@dataclass(frozen=True)
class Plan:
    settings: Settings  # on the simulated clock the ticks follow
    start: datetime
    end: datetime
    ticks: TickColumns  # in clock order (events before companies at the same instant)
    companies_needed: int  # company batches 1..n the event ticks reference
    counts: dict[Stream, tuple[int, int]] = field(default_factory=dict)  # ticks, records

    @property
    def records(self) -> int:
        return int(self.ticks.records.sum())


def parse_when(option: str, value: str) -> datetime:
    """An aware ISO-8601 time for `option`, or a one-line error naming it."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise BackfillInputError(
            f"{option} {value!r} is not an ISO-8601 time; use e.g. 2026-01-01T00:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise BackfillInputError(
            f"{option} {value!r} has no timezone; give UTC, e.g. {text}Z"
        ) from None
    return moment


def parse_streams(value: str) -> tuple[Stream, ...]:
    names = [part.strip() for part in value.split(",") if part.strip()]
    known = [s.value for s in Stream]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise BackfillInputError(
            f"--streams {value!r}: unknown stream "
            f"{', '.join(map(repr, unknown)) or '(none given)'}; allowed: "
            f"{', '.join(known)} (comma-separated)"
        )
    return tuple(s for s in Stream if s.value in names)


def on_clock(settings: Settings, start: datetime) -> Settings:
    """The settings with a simulated clock: the config's own, or one starting at `start`."""
    if settings.clock.kind == "simulated":
        return settings
    data = settings.model_dump(mode="json")
    data["clock"] = {"kind": "simulated", "start": start.isoformat()}
    return parse_settings(data, env=False)


def seqs_in(
    settings: Settings, stream: Stream, mode: Mode, start: datetime, end: datetime
) -> range:
    """The seqs whose tick (interval end) lies in (start, end]: the batches inside the range."""
    origin, length = settings.clock.start, settings.interval(stream, mode)
    assert origin is not None
    return range((start - origin) // length + 1, (end - origin) // length + 1)


def _check_range(
    settings: Settings, start: datetime, end: datetime, streams: Iterable[Stream], mode: Mode
) -> None:
    if end <= start:
        raise BackfillInputError(
            f"--to {end.isoformat()} is not after --from "
            f"{start.isoformat()}; give a range with --from < --to"
        )
    origin = settings.clock.start
    assert origin is not None
    if start < origin:
        raise BackfillInputError(
            f"--from {start.isoformat()} is before the simulated clock's "
            f"start (clock.start {origin.isoformat()}); no tick lies before "
            "it: use --from ≥ clock.start"
        )
    total = sum(len(seqs_in(settings, s, mode, start, end)) for s in streams)
    # event ticks reference every company batch since the clock's start: those count too
    total = max(total, companies_before(settings, mode, end))
    if total > MAX_TICKS:
        raise BackfillInputError(
            f"--from {start.isoformat()} --to {end.isoformat()} holds "
            f"{total:,} ticks; at most {MAX_TICKS:,} per run: split the "
            "range (a backfill resumes where it stopped)"
        )


@dataclass(frozen=True)
class CompanyBatch:
    """What a company batch leaves for later event batches: its ordinals, the rejected, and
    the drivers the others add to the eligible ones (active, not rejected)."""

    seq: int
    first_ordinal: int
    ordinals: int
    excluded: tuple[int, ...]
    records: int
    drivers: int


def settle_companies(spec: BatchSpec) -> CompanyBatch:
    """The batch's distinct companies and those silver will reject, from its spec alone.

    Silver keeps a planned company exactly when one of its rows passes the contract. A clean
    row always passes (the generator's promise, which tests/audit.py checks row by row), and
    a duplicate is a clean copy; so only the mutated rows of companies without a copy are
    built and checked here, as silver checks them (a twentieth of the rows: building every
    company's name was most of a ten-year plan's time). A worker's load of the store's list
    checks the result: a different list is refused by its digest, never used.
    """
    with gc_paused():
        planned = draft(spec)
    layout = planned.layout
    assert isinstance(layout, Layout)  # companies have no arrival conditions: no copies appended
    columns = layout.columns
    assert isinstance(columns, CompanyColumns)
    copied = set(layout.originals.tolist())
    suspects = np.array(sorted(b for b in layout.mutated if b not in copied), dtype=np.int64)
    traits = columns.traits
    ids = traits.company_ids
    kept = set(ids) - {ids[b] for b in suspects.tolist()}
    ctx = Context(spec.interval_start, spec.interval_end, None)
    with gc_paused():
        for line in to_lines(layout.base_rows(suspects)):
            record = parse(line)
            result = (
                record if isinstance(record, Rejection) else check(Stream.companies, record, ctx)
            )
            if not isinstance(result, Rejection):
                kept.add(result["company_id"])
    held = np.fromiter((cid in kept for cid in ids), dtype=bool, count=len(ids))
    excluded = tuple(spec.first_ordinal + int(i) for i in np.flatnonzero(~held))
    drivers = int(traits.drivers[held & traits.active.astype(bool)].sum())
    return CompanyBatch(spec.seq, spec.first_ordinal, len(columns), excluded, len(layout), drivers)


def company_ledger(settings: Settings, mode: Mode, upto: int) -> Iterator[CompanyBatch]:
    """Company batches 1..upto in order, each starting where the previous one ended."""
    first = 0
    for seq in range(1, upto + 1):
        batch = settle_companies(
            build_spec(settings, Stream.companies, seq, mode=mode, first_ordinal=first)
        )
        yield batch
        first += batch.ordinals


def companies_before(settings: Settings, mode: Mode, moment: datetime) -> int:
    """How many company ticks lie strictly before `moment` on the clock."""
    origin = settings.clock.start
    assert origin is not None
    return max(
        0,
        (moment - origin - timedelta(microseconds=1)) // settings.interval(Stream.companies, mode),
    )


class _Walk:
    """The company batches folded in so far: the watermark, the eligible drivers, and the
    run's exclusion ledger; it adds each tick to the plan as it goes."""

    def __init__(self, batches: Iterator[CompanyBatch], ticks: TickBuilder, keep: range) -> None:
        self.batches, self.ticks, self.keep = batches, ticks, keep
        self.used = self.watermark = self.drivers = 0
        self.ledger = Ledger()

    def upto(self, count: int) -> None:
        """Fold company batches in until `count` of them are (the watermark only grows)."""
        for batch in islice(self.batches, max(0, count - self.used)):
            self.used += 1
            self.watermark += batch.ordinals
            self.drivers += batch.drivers
            self.ledger.extend(batch.excluded)
            if batch.seq in self.keep:
                self.ticks.add(
                    Tick(
                        Stream.companies,
                        batch.seq,
                        batch.records,
                        self.ticks.maker,
                        0,
                        batch.first_ordinal,
                    )
                )

    def event(self, seq: int, before: int) -> None:
        self.upto(before)
        exclusions = self.ledger.reference()
        maker = self.ticks.maker
        spec = build_spec(
            maker.settings,
            Stream.events,
            seq,
            mode=maker.mode,
            watermark=self.watermark,
            exclusions=exclusions,
        )
        # the eligible drivers counted as the companies settled: the generator's own count
        # would build its per-company table (7 bytes a company) just to sum it
        records = batch_size(spec, drivers=self.drivers)[0]
        self.ticks.add(
            Tick(
                Stream.events,
                seq,
                records,
                maker,
                before,
                self.watermark,
                self.ticks.boundary(exclusions),
            )
        )


def plan_backfill(
    settings: Settings,
    start: datetime,
    end: datetime,
    streams: tuple[Stream, ...],
    mode: Mode = Mode.production,
) -> Plan:
    """Every tick of (start, end] for `streams`, in clock order (specs built when asked)."""
    settings = on_clock(settings, start)
    _check_range(settings, start, end, streams, mode)
    event_seqs = (
        seqs_in(settings, Stream.events, mode, start, end) if Stream.events in streams else range(0)
    )
    company_seqs = (
        seqs_in(settings, Stream.companies, mode, start, end)
        if Stream.companies in streams
        else range(0)
    )
    assert settings.clock.start is not None
    length = settings.interval(Stream.events, mode)
    needed = (
        companies_before(settings, mode, settings.clock.start + length * event_seqs[-1])
        if event_seqs
        else 0
    )
    last = max(needed, company_seqs.stop - 1)
    builder = TickBuilder(Maker(settings, mode))
    walk = _Walk(company_ledger(settings, mode, last), builder, company_seqs)
    for seq in event_seqs:
        walk.event(seq, companies_before(settings, mode, settings.clock.start + length * seq))
    walk.upto(last)
    ticks = builder.freeze(walk.ledger.ordinals)
    counts = {s: (len(ticks.seqs(s)), ticks.records_of(s)) for s in streams}
    return Plan(settings, start, end, ticks, needed, counts)
