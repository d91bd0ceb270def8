"""The company watermark: which companies are settled in silver, so event batches may use them.

Two marks in `control_state` let the walk start past ordinal 0: the settled prefix an earlier
walk found (a checkpoint), and the floor below which retention pruned the batch rows.
The same rows give back the excluded companies an event spec names by reference
(`load_exclusions`), so a batch is regenerated from the store that holds its run.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from emugen.db.models import BatchRow, ControlState
from emugen.errors import ExclusionsUnknown
from emugen.generate import BatchSpec
from emugen.generate.exclusions import Exclusions, digest_of, known, remember
from emugen.vocabulary import Stream

COMPANY_FLOOR = "company_floor"  # companies below it: their batch rows were pruned
COMPANY_SETTLED = "company_settled"  # companies below it: settled in silver (a walk's checkpoint)


def _mark(session: Session, key: str) -> tuple[int, tuple[int, ...]]:
    raw = session.scalar(select(ControlState.value).where(ControlState.key == key))
    return (0, ()) if raw is None else _parsed(raw)


# A mark's excluded list holds every company silver ever rejected (~13,000 ordinals, 100 KB,
# after 360,000 companies), and every event batch reads both marks, the settled one twice, and
# writes the settled one: parsing each time cost ~3 ms per read at that size, growing with the
# fleet. Marks this process wrote or read are kept parsed, by their exact text.
_PARSED: dict[str, tuple[int, tuple[int, ...]]] = {}
_PARSED_KEEP = 4


def _parsed(raw: str) -> tuple[int, tuple[int, ...]]:
    found = _PARSED.get(raw)
    if found is None:
        value = json.loads(raw)
        found = _remember(raw, int(value["ordinal"]), tuple(value["excluded"]))
    return found


def _remember(raw: str, ordinal: int, excluded: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    if len(_PARSED) >= _PARSED_KEEP:
        _PARSED.pop(next(iter(_PARSED)))  # the oldest: marks only move forward
    _PARSED[raw] = (ordinal, excluded)
    return ordinal, excluded


def _set_mark(session: Session, key: str, ordinal: int, excluded: list[int]) -> None:
    value = json.dumps({"ordinal": ordinal, "excluded": excluded})
    _remember(value, ordinal, tuple(excluded))
    row = session.get(ControlState, key)
    now = datetime.now(UTC)
    if row is None:
        session.add(ControlState(key=key, value=value, updated_at=now))
    else:
        row.value, row.updated_at = value, now


def company_floor(session: Session) -> tuple[int, tuple[int, ...]]:
    """Where the watermark walk may start: (ordinal, rejected ordinals below it).

    The higher of two marks, both meaning "every company below is settled in silver": the
    checkpoint of an earlier walk, and the floor below which retention pruned batch rows.
    """
    return max(
        _mark(session, COMPANY_SETTLED), _mark(session, COMPANY_FLOOR), key=lambda mark: mark[0]
    )


def pruned_floor(session: Session) -> tuple[int, tuple[int, ...]]:
    """Companies below this ordinal had their batch rows pruned."""
    return _mark(session, COMPANY_FLOOR)


def mark_settled(session: Session, ordinal: int, excluded: list[int]) -> None:
    """Remember that companies below `ordinal` are settled (company batches never un-settle)."""
    if ordinal > _mark(session, COMPANY_SETTLED)[0]:
        _set_mark(session, COMPANY_SETTLED, ordinal, excluded)


def raise_floor(session: Session, ids: list[str]) -> None:
    """Move the pruned floor past these company batches (a contiguous prefix, in order)."""
    floor, excluded = pruned_floor(session)
    rows = session.execute(
        select(BatchRow.first_ordinal, BatchRow.ordinal_count, BatchRow.excluded_ordinals)
        .where(BatchRow.batch_id.in_(ids))
        .order_by(BatchRow.first_ordinal)
    ).all()
    rejected = list(excluded)
    for first, count, exclusions in rows:
        if first != floor:  # not contiguous any more (cannot happen: picked in order)
            raise RuntimeError(f"company batches to prune are not contiguous at {floor}")
        floor += count
        rejected.extend(json.loads(exclusions or "[]"))
    _set_mark(session, COMPANY_FLOOR, floor, rejected)


def company_watermark(session: Session) -> tuple[int, tuple[int, ...]]:
    """Companies 0..W-1 are settled (every company batch below W is refined or failed), and the
    ordinals among them that are not in silver: rejected by silver, or planned by a failed batch.

    The walk starts from a mark in control_state rather than at ordinal 0 (see
    the module docstring): the settled prefix found by an earlier walk, or the floor below
    which retention pruned the batch rows. Without it every event batch would read every
    company batch ever made (16 ms per event batch after an hour at a 1 s interval, growing).
    """
    floor, watermark, excluded = _settled(session)
    if watermark > floor:
        mark_settled(session, watermark, excluded)
    return watermark, tuple(excluded)


def usable_companies(session: Session) -> int:
    """How many companies an event batch generated now could pick drivers from (reads only).

    Zero means its batch would be empty ("no company is in silver yet"): beat holds the
    events tick until this is positive.
    """
    _, watermark, excluded = _settled(session)
    return watermark - len(set(excluded))


def _settled(session: Session) -> tuple[int, int, list[int]]:
    """(the floor the walk started from, the watermark W, the ordinals below W not in silver)."""
    floor, below = company_floor(session)
    watermark, excluded = _walk(session, floor, below, None)
    return floor, watermark, excluded


def _walk(
    session: Session, floor: int, below: tuple[int, ...], upto: int | None
) -> tuple[int, list[int]]:
    """From a mark, over the settled company batches in ordinal order (those below `upto`)."""
    query = select(
        BatchRow.first_ordinal, BatchRow.ordinal_count, BatchRow.status, BatchRow.excluded_ordinals
    ).where(BatchRow.stream == Stream.companies.value, BatchRow.first_ordinal >= floor)
    if upto is not None:
        query = query.where(BatchRow.first_ordinal < upto)
    watermark, excluded = floor, list(below)
    for first, count, status, rejected in session.execute(query.order_by(BatchRow.first_ordinal)):
        if first != watermark or status not in ("silver", "gold", "failed"):
            break
        watermark += count
        if status == "failed":
            # Its retries ran out, so nothing will refine it: treat every company it planned as
            # absent. Waiting for it instead would freeze the watermark (and every later event
            # batch's choice of companies) for good.
            excluded.extend(range(first, first + count))
        else:
            excluded.extend(json.loads(rejected or "[]"))
    return watermark, excluded


def exclusions_reference(excluded: tuple[int, ...]) -> Exclusions:
    """What an event spec carries for this excluded list (kept loaded in this process)."""
    return remember(np.asarray(excluded, dtype=np.int64))


# The last list each store gave `load_exclusions`: a backfill's event ticks come in clock
# order, each naming a few more companies than the last, so a worker walks on from there
# rather than over every company batch of the run each time.
_LOADED: dict[str, tuple[int, np.ndarray]] = {}


def load_exclusions(session: Session, spec: BatchSpec) -> None:
    """Load the excluded companies `spec` names by reference from this store, so `draft(spec)`
    finds them; ExclusionsUnknown when the store's differ (another run's store)."""
    reference = spec.exclusions
    if reference is None or known(reference) is not None:
        return
    bind = session.get_bind()
    store = str(bind.engine.url)
    ordinals = _store_exclusions(session, spec.watermark, _LOADED.get(store))
    if digest_of(ordinals) != reference.digest:
        ordinals = _store_exclusions(session, spec.watermark, None)  # not from a stale start
    if digest_of(ordinals) != reference.digest:
        raise ExclusionsUnknown(
            f"{spec.stream.value} batch {spec.seq} names {reference.count:,} excluded companies "
            f"(digest {reference.digest}), and this store's company batches below its "
            f"watermark {spec.watermark:,} exclude {len(ordinals):,} others; regenerate it "
            "with the store its run wrote"
        )
    remember(ordinals, reference.digest)
    _LOADED[store] = (spec.watermark, ordinals)


def _store_exclusions(
    session: Session, watermark: int, start: tuple[int, np.ndarray] | None
) -> np.ndarray:
    """The excluded ordinals below `watermark` as the store holds them, sorted."""
    floor, below = company_floor(session)
    if start is not None and floor < start[0] <= watermark:
        floor, below = start[0], tuple(start[1].tolist())
    if floor >= watermark:
        excluded = [o for o in below if o < watermark]
    else:
        _, excluded = _walk(session, floor, below, watermark)
    return np.asarray(excluded, dtype=np.int64)
