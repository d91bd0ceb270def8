"""Bronze: allocate the next seq, generate, land batch row, records and truth in one transaction."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from emugen.db.bulk import bulk_insert
from emugen.db.models import BatchRow, BronzeRecord, InjectedDefect, PlannedCompany
from emugen.db.session import write_session
from emugen.db.stage_log import stage_done
from emugen.errors import BatchNotFound, SeqContention
from emugen.generate import BatchSpec, Draft, build_spec, draft, gc_paused
from emugen.generate.companies import CompanyColumns
from emugen.pipeline.arrivals import source_specs, write_ledger
from emugen.pipeline.stage import StageResult, since_ms
from emugen.pipeline.watermark import company_watermark, exclusions_reference, load_exclusions
from emugen.settings import Settings
from emugen.vocabulary import Mode, Stream

CHUNK = 5_000  # rows built, serialised and inserted at a time (~8 MB of dicts and text)
ALLOCATION_ATTEMPTS = 8
_DRAFTS = "emugen_drafts"  # session.info key: drafts allocated in this transaction


@dataclass(frozen=True)
class Landed:
    """The outcome of a generation: the batch it made, or the one the same tick made before."""

    batch_id: str
    stream: Stream
    seq: int
    record_count: int
    created: bool


@dataclass(frozen=True)
class Origin:
    """Who landed a batch: the worker, its Celery task, and the pipeline queue depth it saw."""

    worker: str | None = None
    task_id: str | None = None
    queue_depth: int | None = None


def batch_id_for(stream: Stream | str, seq: int) -> str:
    """Sortable, and names the stream and seq: `events-000000042`."""
    return f"{Stream(stream).value}-{seq:09d}"


def next_spec(
    session: Session,
    settings: Settings,
    stream: Stream,
    scheduled_at: datetime,
    mode: Mode | None = None,
    size: int | None = None,
) -> BatchSpec:
    """The spec of the next batch of `stream`, numbered from what the database holds."""
    last = session.scalar(select(func.max(BatchRow.seq)).where(BatchRow.stream == stream.value))
    seq = (last or 0) + 1
    first_ordinal, watermark = 0, 0
    exclusions = None
    if stream is Stream.companies:
        # the latest company batch ends where the next one starts (ordinals are handed out in
        # seq order): one probe of the (stream, seq) key, where max(first + count) read every
        # company batch row ever made (83 ms at 36,000 company batches)
        first_ordinal = (
            session.scalar(
                select(BatchRow.first_ordinal + BatchRow.ordinal_count)
                .where(BatchRow.stream == stream.value)
                .order_by(BatchRow.seq.desc())
                .limit(1)
            )
            or 0
        )
    else:
        watermark, excluded = company_watermark(session)
        exclusions = exclusions_reference(excluded)  # by reference: a spec stays small
    redelivered = settings.events.arrival.redelivered
    sources = (
        source_specs(session, stream, seq, redelivered.max_age)
        if stream is Stream.events and redelivered is not None
        else ()
    )
    return build_spec(
        settings,
        stream,
        seq,
        scheduled_at=scheduled_at,
        first_ordinal=first_ordinal,
        watermark=watermark,
        exclusions=exclusions,
        size=size,
        mode=mode,
        sources=sources,
    )


def land_bronze(
    session: Session,
    planned: Draft,
    *,
    fingerprint: str,
    scheduled_at: datetime,
    generate_ms: float,
    origin: Origin | None = None,
) -> str:
    """Write the batch row, every record and the truth; the caller's transaction makes it atomic."""
    started = time.perf_counter()
    spec = planned.spec
    batch_id = batch_id_for(spec.stream, spec.seq)
    now = datetime.now(UTC)
    ordinals = len(planned.layout.columns) if spec.stream is Stream.companies else 0
    origin = origin or Origin()
    session.add(
        BatchRow(
            batch_id=batch_id,
            stream=spec.stream.value,
            seq=spec.seq,
            mode=spec.mode.value,
            seed=spec.seed,
            config_fingerprint=fingerprint,
            generator_version=spec.generator_version,
            spec=spec.model_dump_json(),
            interval_start=spec.interval_start,
            interval_end=spec.interval_end,
            scheduled_at=scheduled_at,
            first_ordinal=spec.first_ordinal,
            ordinal_count=ordinals,
            record_count=len(planned),
            injected_count=len(planned.truth),
            injected_by_type=json.dumps(dict(Counter(t.defect.value for t in planned.truth))),
            status="bronze",
            note=planned.note,
            worker=origin.worker,
            task_id=origin.task_id,
            queue_depth=origin.queue_depth,
            generated_at=now,
            bronze_at=now,
            generate_ms=generate_ms,
            bronze_ms=0.0,
        )
    )
    session.flush()  # the batch row first: a clash on (stream, seq) or the tick stops here
    session.info.setdefault(_DRAFTS, {})[batch_id] = planned  # run() lands it, not redrafts it
    run(session, batch_id)
    row = session.get(BatchRow, batch_id)
    assert row is not None
    row.bronze_ms = (time.perf_counter() - started) * 1000  # the batch row's insert included
    return batch_id


def run(session: Session, batch_id: str) -> StageResult:
    """The stage contract: land a drafted batch's records, truth and planned companies under
    its batch row. The draft is the one this session just made, else it is drafted again
    from the recorded spec (byte for byte the same, as replay checks); a batch whose records
    are already there is left alone."""
    started = time.perf_counter()
    planned = session.info.get(_DRAFTS, {}).pop(batch_id, None)
    batch = session.get(BatchRow, batch_id)
    if batch is None:
        raise BatchNotFound(f"no batch {batch_id!r}; `emugen status` lists the latest batches")
    if planned is None:
        if (
            session.scalar(
                select(BronzeRecord.row_no).where(BronzeRecord.batch_id == batch_id).limit(1)
            )
            is not None
        ):
            return StageResult(
                batch_id,
                "bronze",
                batch.record_count,
                batch.record_count,
                since_ms(started),
                "already in bronze",
            )
        spec = BatchSpec.model_validate_json(batch.spec)
        load_exclusions(session, spec)
        with gc_paused():
            planned = draft(spec)
    _write_rows(session, batch_id, planned)
    batch.bronze_at = datetime.now(UTC)
    return StageResult(batch_id, "bronze", len(planned), len(planned), since_ms(started))


def _write_rows(session: Session, batch_id: str, planned: Draft) -> None:
    row_no = 0
    table = BronzeRecord.__table__
    for lines in planned.line_chunks(CHUNK):
        bulk_insert(
            session,
            table,
            ("batch_id", "row_no", "payload"),
            [(batch_id, row_no + i, line) for i, line in enumerate(lines)],
        )
        row_no += len(lines)
    bulk_insert(
        session,
        InjectedDefect.__table__,
        ("batch_id", "row_no", "defect", "field", "original", "injected", "expected_reason"),
        [
            (
                batch_id,
                t.row_no,
                t.defect.value,
                t.field,
                t.original,
                t.injected,
                t.expected_reason.value,
            )
            for t in planned.truth
        ],
    )
    write_ledger(session, batch_id, planned)  # the arrival ledger, out of band like the truth
    if isinstance(planned.layout.columns, CompanyColumns):
        # what silver needs from the spec, recorded here so it never runs the generator
        bulk_insert(
            session,
            PlannedCompany.__table__,
            ("batch_id", "row_no", "company_id"),
            [
                (batch_id, i, company_id)
                for i, company_id in enumerate(planned.layout.columns.traits.company_ids)
            ],
        )


def generate_and_land(
    engine: Engine,
    settings: Settings,
    stream: Stream | str,
    scheduled_at: datetime,
    *,
    origin: Origin | None = None,
    mode: Mode | None = None,
    size: int | None = None,
) -> Landed:
    """Allocate, generate and land one batch for the tick `scheduled_at`, exactly once.

    A retried tick finds the batch it already made. Two generators racing for the same seq:
    the loser's insert clashes on (stream, seq) and it retries with the next number.
    """
    stream = Stream(stream)
    for _ in range(ALLOCATION_ATTEMPTS):
        try:
            with write_session(engine) as session:
                found = session.execute(
                    select(BatchRow.batch_id, BatchRow.seq, BatchRow.record_count).where(
                        BatchRow.stream == stream.value, BatchRow.scheduled_at == scheduled_at
                    )
                ).first()
                if found:
                    return Landed(found.batch_id, stream, found.seq, found.record_count, False)
                spec = next_spec(session, settings, stream, scheduled_at, mode, size)
                started = time.perf_counter()
                with gc_paused():
                    planned = draft(spec)
                    generate_ms = (time.perf_counter() - started) * 1000
                    batch_id = land_bronze(
                        session,
                        planned,
                        fingerprint=settings.fingerprint(),
                        scheduled_at=scheduled_at,
                        generate_ms=generate_ms,
                        origin=origin,
                    )
        except IntegrityError:
            continue
        total_ms = (time.perf_counter() - started) * 1000
        stage_done(
            batch_id,
            "bronze",
            len(planned),
            total_ms,
            generate_ms=generate_ms,
            seq=spec.seq,
            mode=spec.mode.value,
            injected=len(planned.truth),
            note=planned.note or "",
        )
        return Landed(batch_id, stream, spec.seq, len(planned), True)
    raise SeqContention(
        f"could not allocate a {stream.value} seq after {ALLOCATION_ATTEMPTS} attempts; "
        "too many generators are racing for the same stream (run one beat)"
    )
