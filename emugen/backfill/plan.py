"""A backfill's plan: every tick of a range on the simulated clock, each with its full spec.

Pure: no store, no broker. The company watermark of an event tick follows from the clock (the
company batches scheduled strictly before it), and the companies silver will reject follow
from those batches' specs (they are generated and checked by the contract here, as silver
would), so every spec is known before any batch exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice

from emugen.contract import Context, Rejection, check, parse
from emugen.errors import BackfillInputError
from emugen.generate import BatchSpec, batch_size, build_spec, draft, gc_paused
from emugen.generate.companies import CompanyColumns
from emugen.generate.exclusions import Exclusions, Ledger
from emugen.pipeline.bronze import batch_id_for
from emugen.settings import Settings, parse_settings
from emugen.vocabulary import Mode, Stream

MAX_TICKS = 1_000_000  # a year of 15-minute ticks is 35,040; far past this is a typo
_TIE = {Stream.events: 0, Stream.companies: 1}  # at one instant, events cannot have seen them


@dataclass(frozen=True, slots=True)
class Tick:
    """One batch to make: where it sits, its tick time, and the company batches it waits for.

    Its spec is built when asked for (a message, a check), not kept: a ten-year plan holds
    438,000 ticks, and a spec object each would not fit in a few hundred megabytes."""

    stream: Stream
    seq: int
    scheduled_at: datetime
    records: int  # expected record count, duplicates included (known from the spec)
    maker: Maker
    companies_before: int = 0  # events: company batches 1..n must be in silver first
    position: int = 0  # companies: the first ordinal; events: the watermark
    exclusions: Exclusions | None = None  # events: the companies silver will not hold

    @property
    def spec(self) -> BatchSpec:
        return self.maker.spec(self.stream, self.seq, self.position, self.exclusions)

    @property
    def batch_id(self) -> str:
        return batch_id_for(self.stream, self.seq)

    def message(self, fingerprint: str) -> dict[str, object]:
        """The Celery message: everything a worker needs besides its store's URLs."""
        return {"spec": self.spec.model_dump_json(), "scheduled_at": self.scheduled_at.isoformat(),
                "fingerprint": fingerprint, "companies_before": self.companies_before}


@dataclass(frozen=True)
class Maker:
    """What every tick of a plan shares: the settings and mode its specs are built from."""

    settings: Settings
    mode: Mode

    def spec(self, stream: Stream, seq: int, position: int,
             exclusions: Exclusions | None) -> BatchSpec:
        if stream is Stream.companies:
            return build_spec(self.settings, stream, seq, mode=self.mode, first_ordinal=position)
        return build_spec(self.settings, stream, seq, mode=self.mode, watermark=position,
                          exclusions=exclusions)


@dataclass(frozen=True)
class Plan:
    settings: Settings  # on the simulated clock the ticks follow
    start: datetime
    end: datetime
    ticks: list[Tick]  # in clock order (events before companies at the same instant)
    companies_needed: int  # company batches 1..n the event ticks reference
    counts: dict[Stream, tuple[int, int]] = field(default_factory=dict)  # ticks, records

    @property
    def records(self) -> int:
        return sum(t.records for t in self.ticks)


def parse_when(option: str, value: str) -> datetime:
    """An aware ISO-8601 time for `option`, or a one-line error naming it."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise BackfillInputError(f"{option} {value!r} is not an ISO-8601 time; use e.g. "
                                 "2026-01-01T00:00:00Z") from None
    if moment.tzinfo is None:
        raise BackfillInputError(f"{option} {value!r} has no timezone; give UTC, e.g. "
                                 f"{text}Z") from None
    return moment


def parse_streams(value: str) -> tuple[Stream, ...]:
    names = [part.strip() for part in value.split(",") if part.strip()]
    known = [s.value for s in Stream]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise BackfillInputError(f"--streams {value!r}: unknown stream "
                                 f"{', '.join(map(repr, unknown)) or '(none given)'}; allowed: "
                                 f"{', '.join(known)} (comma-separated)")
    return tuple(s for s in Stream if s.value in names)


def on_clock(settings: Settings, start: datetime) -> Settings:
    """The settings with a simulated clock: the config's own, or one starting at `start`."""
    if settings.clock.kind == "simulated":
        return settings
    data = settings.model_dump(mode="json")
    data["clock"] = {"kind": "simulated", "start": start.isoformat()}
    return parse_settings(data, env=False)


def seqs_in(settings: Settings, stream: Stream, mode: Mode, start: datetime,
            end: datetime) -> range:
    """The seqs whose tick (interval end) lies in (start, end]: the batches inside the range."""
    origin, length = settings.clock.start, settings.interval(stream, mode)
    assert origin is not None
    return range((start - origin) // length + 1, (end - origin) // length + 1)


def _check_range(settings: Settings, start: datetime, end: datetime, streams: Iterable[Stream],
                 mode: Mode) -> None:
    if end <= start:
        raise BackfillInputError(f"--to {end.isoformat()} is not after --from "
                                 f"{start.isoformat()}; give a range with --from < --to")
    origin = settings.clock.start
    assert origin is not None
    if start < origin:
        raise BackfillInputError(f"--from {start.isoformat()} is before the simulated clock's "
                                 f"start (clock.start {origin.isoformat()}); no tick lies before "
                                 "it: use --from ≥ clock.start")
    total = sum(len(seqs_in(settings, s, mode, start, end)) for s in streams)
    # event ticks reference every company batch since the clock's start: those count too
    total = max(total, companies_before(settings, mode, end))
    if total > MAX_TICKS:
        raise BackfillInputError(f"--from {start.isoformat()} --to {end.isoformat()} holds "
                                 f"{total:,} ticks; at most {MAX_TICKS:,} per run: split the "
                                 "range (a backfill resumes where it stopped)")


@dataclass(frozen=True)
class CompanyBatch:
    """What a company batch leaves for later event batches: its ordinals, and the rejected."""

    seq: int
    first_ordinal: int
    ordinals: int
    excluded: tuple[int, ...]
    records: int
    scheduled_at: datetime


def settle_companies(spec: BatchSpec) -> CompanyBatch:
    """The batch's distinct companies and those silver will reject, from its spec alone.

    Silver keeps a planned company exactly when one of its rows passes the contract (rows
    in order, first occurrence wins); the same check runs here on the generated lines.
    """
    with gc_paused():
        planned = draft(spec)
    columns = planned.layout.columns
    assert isinstance(columns, CompanyColumns)
    ctx = Context(spec.interval_start, spec.interval_end, None)
    kept: set[str] = set()
    for lines in planned.line_chunks():
        for line in lines:
            record = parse(line)
            result = record if isinstance(record, Rejection) else check(Stream.companies,
                                                                        record, ctx)
            if not isinstance(result, Rejection):
                kept.add(result["company_id"])
    ids = columns.traits.company_ids
    excluded = tuple(spec.first_ordinal + i for i, cid in enumerate(ids) if cid not in kept)
    return CompanyBatch(spec.seq, spec.first_ordinal, len(columns), excluded,
                        batch_size(spec)[0], spec.interval_end)


def company_ledger(settings: Settings, mode: Mode, upto: int) -> Iterator[CompanyBatch]:
    """Company batches 1..upto in order, each starting where the previous one ended."""
    first = 0
    for seq in range(1, upto + 1):
        batch = settle_companies(build_spec(settings, Stream.companies, seq, mode=mode,
                                            first_ordinal=first))
        yield batch
        first += batch.ordinals


def companies_before(settings: Settings, mode: Mode, moment: datetime) -> int:
    """How many company ticks lie strictly before `moment` on the clock."""
    origin = settings.clock.start
    assert origin is not None
    return max(0, (moment - origin - timedelta(microseconds=1)) // settings.interval(
        Stream.companies, mode))


class _Walk:
    """The company batches folded in so far: the watermark, and the run's exclusion ledger."""

    def __init__(self, batches: Iterator[CompanyBatch], maker: Maker, keep: range) -> None:
        self.batches, self.maker, self.keep = batches, maker, keep
        self.used = self.watermark = 0
        self.ledger = Ledger()
        self.ticks: list[Tick] = []

    def upto(self, count: int) -> None:
        """Fold company batches in until `count` of them are (the watermark only grows)."""
        for batch in islice(self.batches, max(0, count - self.used)):
            self.used += 1
            self.watermark += batch.ordinals
            self.ledger.extend(batch.excluded)
            if batch.seq in self.keep:
                self.ticks.append(Tick(Stream.companies, batch.seq, batch.scheduled_at,
                                       batch.records, self.maker, 0, batch.first_ordinal))

    def event(self, seq: int, before: int) -> None:
        self.upto(before)
        exclusions = self.ledger.reference()
        spec = self.maker.spec(Stream.events, seq, self.watermark, exclusions)
        self.ticks.append(Tick(Stream.events, seq, spec.interval_end, batch_size(spec)[0],
                               self.maker, before, self.watermark, exclusions))


def plan_backfill(settings: Settings, start: datetime, end: datetime,
                  streams: tuple[Stream, ...], mode: Mode = Mode.production) -> Plan:
    """Every tick of (start, end] for `streams`, in clock order (specs built when asked)."""
    settings = on_clock(settings, start)
    _check_range(settings, start, end, streams, mode)
    event_seqs = seqs_in(settings, Stream.events, mode, start, end) if Stream.events in streams \
        else range(0)
    company_seqs = seqs_in(settings, Stream.companies, mode, start, end) \
        if Stream.companies in streams else range(0)
    assert settings.clock.start is not None
    length = settings.interval(Stream.events, mode)
    needed = companies_before(settings, mode, settings.clock.start + length * event_seqs[-1]) \
        if event_seqs else 0
    last = max(needed, company_seqs.stop - 1)
    walk = _Walk(company_ledger(settings, mode, last), Maker(settings, mode), company_seqs)
    for seq in event_seqs:
        walk.event(seq, companies_before(settings, mode, settings.clock.start + length * seq))
    walk.upto(last)
    ticks = walk.ticks
    ticks.sort(key=lambda t: (t.scheduled_at, _TIE[t.stream]))
    counts = {s: (sum(1 for t in ticks if t.stream is s),
                  sum(t.records for t in ticks if t.stream is s)) for s in streams}
    return Plan(settings, start, end, ticks, needed, counts)
