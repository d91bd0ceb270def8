"""Landing batches: bronze's rows to the zone after commit, the bookkeeping, pruning.

A landing failure never raises out of here: it is recorded per batch (landing_failures),
logged, and the batch goes on to silver and gold; the reaper lands it once the cause is gone.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select
from sqlalchemy.orm import Session

from emugen.db.bronze_rows import keyset_pages
from emugen.db.models import BatchRow, LandedFile, LandingFailure
from emugen.db.session import write_session
from emugen.db.stage_log import stage_done
from emugen.errors import LandingError
from emugen.settings import Landing
from emugen.sinks import filesystem
from emugen.sinks.landing import (
    CHUNK,
    BatchFacts,
    Digest,
    LandingFile,
    data_path,
    data_pieces,
    manifest_file,
)
from emugen.sinks.release import held_back, released_by

logger = logging.getLogger("emugen.landing")
# Test hook only: seconds to wait between the bronze commit and the file write, so a test can
# kill -9 the worker inside that window reproducibly. Unset in every real run.
FAULT_DELAY_ENV = "EMUGEN_LANDING_TEST_DELAY_S"
# After a failure this process skips the zone for a while (recording why) instead of paying a
# refusing endpoint's retries (~9 s with botocore's defaults) on every batch; the reaper retries.
COOLDOWN_S = 10.0
_failed_at: dict[str, tuple[float, str]] = {}


# the columns of a batch row that make its BatchFacts (landing and the audit read the same)
FACTS = (
    BatchRow.batch_id,
    BatchRow.stream,
    BatchRow.seq,
    BatchRow.mode,
    BatchRow.spec,
    BatchRow.interval_start,
    BatchRow.interval_end,
    BatchRow.scheduled_at,
    BatchRow.record_count,
)


def read_facts(conn: Connection | Session, batch_id: str) -> BatchFacts | None:
    row = conn.execute(select(*FACTS).where(BatchRow.batch_id == batch_id)).first()
    return None if row is None else BatchFacts(*row)


def bronze_lines(conn: Connection | Session, batch_id: str) -> list[str]:
    """The batch's raw records in row order: the bytes the zone holds come from bronze."""
    return [line for lines in bronze_chunks(conn, batch_id) for line in lines]


def bronze_chunks(
    conn: Connection | Session, batch_id: str, size: int = CHUNK
) -> Iterator[list[str]]:
    """The same records `size` rows at a time (from the last row_no read: no cursor held
    open between chunks), so a million-row batch is never in memory whole."""
    for rows in keyset_pages(conn, batch_id, size):
        yield [payload for _, payload in rows]


def _complete(chunks: Iterable[Sequence[str]], facts: BatchFacts) -> Iterator[Sequence[str]]:
    """The chunks, then a LandingError if bronze did not hold every record (before the file
    is renamed into place, so no partial file ever lands)."""
    rows = 0
    for lines in chunks:
        rows += len(lines)
        yield lines
    if rows != facts.record_count:
        raise LandingError(
            f"bronze holds {rows} of {facts.record_count} records of "
            f"{facts.batch_id}; run `emugen replay {facts.batch_id}`"
        )


def land(
    engine: Engine, landing: Landing, batch_id: str, *, retry_now: bool = False
) -> LandedFile | None:
    """Write the batch's data file then its manifest, and record them; None when it did not.

    Within COOLDOWN_S of a failure on the same root the write is not tried (unless
    `retry_now`, as the reaper asks): the batch is recorded as not landed with that error.
    """
    if not landing.enabled:
        return None
    recent = _failed_at.get(landing.root)
    if not retry_now and recent and time.monotonic() - recent[0] < COOLDOWN_S:
        # the error recorded is this batch's: that it was not tried, and the failure (on
        # another batch's file) that made this process hold off
        ago = time.monotonic() - recent[0]
        _record_failure(
            engine,
            landing,
            batch_id,
            f"not tried: landing root {landing.root} failed {ago:.1f} s ago, "
            f"holding off {COOLDOWN_S:.0f} s (that failure: {recent[1]})",
        )
        return None
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            waiting = released_by(conn, batch_id)  # delayed batches released at this tick
            facts = read_facts(conn, batch_id)
            if facts is None:
                return None  # cleaned or pruned meanwhile
            if held_back(conn, batch_id):  # a delayed batch: released at a later tick
                _release(engine, landing, waiting)
                return None
            _fault_window(batch_id)
            # bronze is read chunk by chunk while the file is written
            record = write_files(landing, facts, bronze_chunks(conn, batch_id))
        # Core, not the ORM: this runs on every batch, on the worker that also runs the stages
        with engine.execution_options(emugen_write=True).begin() as conn:
            conn.execute(_upsert(conn, record))
            conn.execute(delete(LandingFailure).where(LandingFailure.batch_id == batch_id))
        _failed_at.pop(landing.root, None)
        stage_done(
            batch_id,
            "landing",
            record["rows"],
            (time.perf_counter() - started) * 1000,
            path=record["path"],
            bytes=record["bytes"],
        )
        _release(engine, landing, waiting)  # after this tick's own file
        return LandedFile(**record)
    except Exception as exc:  # noqa: BLE001 - a landing failure must never fail the batch
        message = (
            str(exc)
            if isinstance(exc, LandingError)
            else (f"landing root {landing.root}: {type(exc).__name__}: {exc}")
        )
        logger.warning("landing failed for %s: %s", batch_id, message)
        _failed_at[landing.root] = (time.monotonic(), message)
        _record_failure(engine, landing, batch_id, message)
        return None


def _release(engine: Engine, landing: Landing, waiting: list[str]) -> None:
    """Land the delayed batches that waited for this tick, after its own file."""
    for held in waiting:
        land(engine, landing, held, retry_now=True)


def write_files(
    landing: Landing, facts: BatchFacts, chunks: Iterable[Sequence[str]]
) -> dict[str, Any]:
    """Data file first, streamed and hashed as it goes; manifest after it: a manifest always
    describes a file already whole."""
    zone = filesystem.open_zone(landing.root, landing.storage_options)
    digest, path = Digest(), data_path(facts, landing.format)
    filesystem.write(
        zone,
        path,
        digest.hash(data_pieces(facts, digest.count(_complete(chunks, facts)), landing.format)),
    )
    data = LandingFile(path, b"", digest.rows, digest.sha.hexdigest(), digest.bytes)
    manifest = manifest_file(facts, [data], landing.format)
    filesystem.write(zone, manifest.path, manifest.data)
    return {
        "batch_id": facts.batch_id,
        "root": landing.root,
        "format": landing.format,
        "path": path,
        "manifest_path": manifest.path,
        "sha256": data.sha256,
        "bytes": data.size,
        "rows": data.rows,
        "landed_at": datetime.now(UTC),
    }


def _upsert(conn: Connection, record: dict[str, Any]) -> Any:
    """Insert or replace the batch's row: two deliveries of one batch may land at once."""
    from sqlalchemy.dialects import postgresql, sqlite

    # both dialects' Insert have on_conflict_do_update with these arguments
    dialect_insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(LandedFile).values(**record)
    changed = {k: v for k, v in record.items() if k != "batch_id"}
    return statement.on_conflict_do_update(index_elements=["batch_id"], set_=changed)


def _fault_window(batch_id: str) -> None:
    delay = os.environ.get(FAULT_DELAY_ENV)
    if delay:
        logger.warning(
            "test hook %s: waiting %s s before writing %s", FAULT_DELAY_ENV, delay, batch_id
        )
        time.sleep(float(delay))


def _record_failure(engine: Engine, landing: Landing, batch_id: str, message: str) -> None:
    try:
        with write_session(engine) as session:
            if session.get(BatchRow, batch_id) is None:
                return
            found = session.get(LandingFailure, batch_id)
            now = datetime.now(UTC)
            if found is None:
                session.add(
                    LandingFailure(
                        batch_id=batch_id,
                        root=landing.root,
                        error=message[:2000],
                        attempts=1,
                        at=now,
                    )
                )
            else:
                found.root, found.error, found.at = landing.root, message[:2000], now
                found.attempts += 1
    except Exception:  # noqa: BLE001 - bookkeeping must not take the worker down
        logger.exception("could not record the landing failure of %s", batch_id)


def remove_files(landing: Landing, session: Session, ids: list[str]) -> int:
    """Delete the landed files and manifests of these batches, then their bookkeeping rows.

    Raises LandingError when the zone refuses, so retention keeps the batch rows (and the
    reaper cannot re-land what is about to go) until the files are gone.
    """
    rows = session.execute(
        select(LandedFile.root, LandedFile.path, LandedFile.manifest_path).where(
            LandedFile.batch_id.in_(ids)
        )
    ).all()
    by_root: dict[str, list[str]] = {}
    for root, path, manifest in rows:
        by_root.setdefault(root, []).extend([path, manifest])
    removed = 0
    for root, paths in by_root.items():
        removed += filesystem.remove(filesystem.open_zone(root, landing.storage_options), paths)
    session.execute(delete(LandedFile).where(LandedFile.batch_id.in_(ids)))
    session.execute(delete(LandingFailure).where(LandingFailure.batch_id.in_(ids)))
    return removed


def landing_health(session: Session) -> dict[str, Any]:
    """Files landed, batches waiting for a re-land and the latest error (naming root and fix)."""
    failures = session.scalar(select(func.count()).select_from(LandingFailure)) or 0
    last = session.scalars(
        select(LandingFailure).order_by(LandingFailure.at.desc()).limit(1)
    ).first()
    return {
        "files": session.scalar(select(func.count()).select_from(LandedFile)) or 0,
        "failing_batches": failures,
        "last_error": None
        if last is None
        else {
            "batch_id": last.batch_id,
            "root": last.root,
            "error": last.error,
            "attempts": last.attempts,
            "at": last.at.isoformat(),
        },
    }
