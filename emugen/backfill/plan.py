"""A backfill's plan: every tick of a range on the simulated clock, each with its full spec.

Pure: no store, no broker. The company watermark of an event tick follows from the clock (the
company batches scheduled strictly before it), and the companies silver will reject follow
from those batches' specs (they are generated and checked by the contract here, as silver
would), so every spec is known before any batch exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from emugen.contract import Context, Rejection, check, parse
from emugen.errors import BackfillInputError
from emugen.generate import BatchSpec, batch_size, build_spec, draft, gc_paused
from emugen.generate.companies import CompanyColumns
from emugen.pipeline.bronze import batch_id_for
from emugen.settings import Settings, parse_settings
from emugen.settings.arrival import MAX_AGE
from emugen.vocabulary import Mode, Stream

MAX_TICKS = 1_000_000  # a year of 15-minute ticks is 35,040; far past this is a typo
_TIE = {Stream.events: 0, Stream.companies: 1}  # at one instant, events cannot have seen them


@dataclass(frozen=True)
class Tick:
    """One batch to make: its spec, its tick time, and the company batches it waits for."""

    spec: BatchSpec
    scheduled_at: datetime
    records: int  # expected record count, duplicates included (known from the spec)
    companies_before: int = 0  # events: company batches 1..n must be in silver first

    @property
    def stream(self) -> Stream:
        return self.spec.stream

    @property
    def batch_id(self) -> str:
        return batch_id_for(self.spec.stream, self.spec.seq)

    def message(self, fingerprint: str) -> dict[str, object]:
        """The Celery message: everything a worker needs besides its store's URLs."""
        return {"spec": self.spec.model_dump_json(), "scheduled_at": self.scheduled_at.isoformat(),
                "fingerprint": fingerprint, "companies_before": self.companies_before}


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

    spec: BatchSpec
    ordinals: int
    excluded: tuple[int, ...]


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
    return CompanyBatch(spec, len(columns), excluded)


def company_ledger(settings: Settings, mode: Mode, upto: int) -> list[CompanyBatch]:
    """Company batches 1..upto in order, each starting where the previous one ended."""
    ledger: list[CompanyBatch] = []
    first = 0
    for seq in range(1, upto + 1):
        batch = settle_companies(build_spec(settings, Stream.companies, seq, mode=mode,
                                            first_ordinal=first))
        ledger.append(batch)
        first += batch.ordinals
    return ledger


def companies_before(settings: Settings, mode: Mode, moment: datetime) -> int:
    """How many company ticks lie strictly before `moment` on the clock."""
    origin = settings.clock.start
    assert origin is not None
    return max(0, (moment - origin - timedelta(microseconds=1)) // settings.interval(
        Stream.companies, mode))


def plan_backfill(settings: Settings, start: datetime, end: datetime,
                  streams: tuple[Stream, ...], mode: Mode = Mode.production) -> Plan:
    """Every tick of (start, end] for `streams`, with full specs, in clock order."""
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
    ledger = company_ledger(settings, mode, max(needed, company_seqs.stop - 1))
    ticks = [_tick(c.spec, c.spec.interval_end, 0) for c in ledger if c.spec.seq in company_seqs]
    watermark, used = 0, 0
    excluded: list[int] = []
    for seq in event_seqs:
        at = settings.clock.start + length * seq
        before = companies_before(settings, mode, at)
        for batch in ledger[used:before]:  # the watermark only grows with the clock
            watermark += batch.ordinals
            excluded.extend(batch.excluded)
        used = max(used, before)
        spec = build_spec(settings, Stream.events, seq, mode=mode, watermark=watermark,
                          excluded_ordinals=tuple(excluded), sources=_sources(ticks, seq))
        ticks.append(_tick(spec, spec.interval_end, before))
    ticks.sort(key=lambda t: (t.scheduled_at, _TIE[t.stream]))
    counts = {s: (sum(1 for t in ticks if t.stream is s),
                  sum(t.records for t in ticks if t.stream is s)) for s in streams}
    return Plan(settings, start, end, ticks, needed, counts)


def _sources(ticks: list[Tick], seq: int) -> tuple[BatchSpec, ...]:
    """The event specs a redelivered copy in batch `seq` may copy from (build_spec keeps
    those within max_age), as the live fleet reads them from the store."""
    return tuple(t.spec for t in ticks[-MAX_AGE:] if t.stream is Stream.events and t.spec.seq < seq)


def _tick(spec: BatchSpec, at: datetime, before: int) -> Tick:
    return Tick(spec, at, batch_size(spec)[0], before)
