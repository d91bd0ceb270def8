"""Silver's last step: the valid rows whose key silver already held become duplicates."""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from emugen.contract import Reason, Rejection, parse
from emugen.db.bulk import bulk_insert
from emugen.db.models import BronzeRecord, Quarantine
from emugen.vocabulary import Stream

BLOCK = 10_000
_IN_LIMIT = 900  # stay under every backend's bound-parameter limit
QUARANTINE_COLUMNS = ("batch_id", "row_no", "stream", "reason", "field", "detail")


def _chunks(values: list[Any], size: int = _IN_LIMIT) -> Iterator[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _key_of(payload: str, key: str) -> Any:
    """The natural key of a bronze row that passed the contract (so it parses and has one)."""
    record = parse(payload)
    assert not isinstance(record, Rejection), "only rows silver accepted are looked up"
    return record[key]


def quarantine_repeats(
    session: Session,
    target: Any,
    key_column: Any,
    key: str,
    batch_id: str,
    stream: Stream,
    accepted: array[int],
) -> int:
    """Quarantine, as duplicates, the valid rows whose key silver already held; their count."""
    landed = session.scalar(
        select(func.count()).select_from(target).where(target.batch_id == batch_id)
    )
    if landed == len(accepted):
        return 0
    skipped = _not_landed(session, target, batch_id, accepted)
    rejected = []
    for part in _chunks(skipped):
        values = {
            row_no: _key_of(payload, key)
            for row_no, payload in session.execute(
                select(BronzeRecord.row_no, BronzeRecord.payload).where(
                    BronzeRecord.batch_id == batch_id, BronzeRecord.row_no.in_(part)
                )
            )
        }
        holders = {
            k: (b, r)
            for k, b, r in session.execute(
                select(key_column, target.batch_id, target.row_no).where(
                    key_column.in_(set(values.values()))
                )
            )
        }
        for row_no in part:
            value = values[row_no]
            holder = holders.get(value)
            where = f"batch {holder[0]} row {holder[1]}" if holder else "a concurrent batch"
            rejected.append(
                (
                    batch_id,
                    row_no,
                    stream.value,
                    Reason.duplicate.value,
                    key,
                    f"{key} {value} is already in silver ({where})",
                )
            )
    bulk_insert(session, Quarantine.__table__, QUARANTINE_COLUMNS, rejected, skip_existing=True)
    return len(rejected)


def _not_landed(session: Session, target: Any, batch_id: str, accepted: array[int]) -> list[int]:
    """The accepted rows silver did not keep, in row order. Arrays, and a block at a time: a
    million-row batch would otherwise hold ~60 MB of int objects or sort temporaries."""
    # Core, not the ORM: an ORM result fetches every row (a million Row objects) before the
    # first is seen. A block per fetchmany: iterating row by row is a fetchone call per row
    table = target.__table__.c
    result = session.connection().execute(select(table.row_no).where(table.batch_id == batch_id))
    parts = [np.array(part, dtype=np.int64) for part in result.scalars().partitions(BLOCK * 10)]
    kept = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    kept.sort()
    rows = np.frombuffer(accepted, dtype=np.int64)
    skipped: list[int] = []
    for lo in range(0, len(rows), BLOCK):
        block = rows[lo : lo + BLOCK]
        at = np.minimum(np.searchsorted(kept, block), max(len(kept) - 1, 0))
        found = kept[at] == block if len(kept) else np.zeros(len(block), dtype=bool)
        skipped.extend(block[~found].tolist())
    return skipped
