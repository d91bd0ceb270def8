"""A store that refuses writes: its cause told through Redis, its unrecorded ticks parked there.

When the disk under the store is full every writer fails, but readers (the dashboard, `emugen
status`) still read the old rows and cannot see why nothing new arrives. So each writer that is
refused says why in one Redis key (with a short life, refreshed by every failure), and a tick
that cannot be recorded as a skip waits in a Redis list until beat writes it back.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from emugen.db.models import BatchRow, SkippedTick
from emugen.db.session import write_session
from emugen.errors import StoreFileGone, StoreRefused
from emugen.fleet.broker import fast_client
from emugen.fleet.control import record_skip

logger = logging.getLogger("emugen.store")
FAULT_KEY = "emugen:store:fault"
PARKED_KEY = "emugen:store:parked_ticks"
FAULT_TTL_S = 60  # refreshed by every refused write (retries come at least every 20 s)
DRAIN_CHUNK = 500
_CLIENTS: dict[tuple[str, int], Any] = {}
_REPORTED: set[int] = set()  # pids that told Redis of a fault (a forked child is not its parent)


def describe(exc: BaseException) -> str:
    """One line naming the database's own error (e.g. "database or disk is full")."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def client_for(url: str) -> Any:
    """One fail-fast Redis client per broker URL per process (forked workers get their own);
    None for other brokers (eager tests), which have nowhere to tell or park anything."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    key = (url, os.getpid())
    if key not in _CLIENTS:
        _CLIENTS[key] = fast_client(url, timeout=2)
    return _CLIENTS[key]


# -- the cause ---------------------------------------------------------------------------------


def report_fault(client: Any, source: str, exc: BaseException) -> None:
    """Tell every reader why the store refused a write (best effort: Redis may be down too)."""
    fault = {"error": describe(exc), "source": source, "at": datetime.now(UTC).isoformat()}
    if client is None:
        return
    _REPORTED.add(os.getpid())
    try:
        client.set(FAULT_KEY, json.dumps(fault), ex=FAULT_TTL_S)
    except Exception:  # noqa: BLE001 - the log still says it
        logger.warning("store refused a write (%s) and Redis could not be told", fault["error"])


def clear_fault(client: Any) -> None:
    """After a write this process made succeeded, withdraw the fault it reported (a lock
    that a retry got past must not leave health degraded for the key's whole life)."""
    if client is None or os.getpid() not in _REPORTED:
        return
    _REPORTED.discard(os.getpid())
    try:
        client.delete(FAULT_KEY)
    except Exception:  # noqa: BLE001 - the key lapses by itself
        logger.warning("could not clear the store fault in Redis; it lapses in %d s", FAULT_TTL_S)


def outage(client: Any) -> dict[str, Any]:
    """The store's last refusal (None once it has passed) and the ticks still parked."""
    with client.pipeline(transaction=False) as pipe:
        pipe.get(FAULT_KEY)
        pipe.llen(PARKED_KEY)
        raw, parked = pipe.execute()
    return {"fault": json.loads(raw) if raw else None, "parked_ticks": int(parked)}


@contextmanager
def refusals(doing: str, url: str) -> Iterator[None]:
    """Turn a database error into one line for a user: what failed, the cause, the fix."""
    try:
        yield
    except SQLAlchemyError as exc:
        cause = describe(exc)
        fix = (
            "free space on the disk that holds it"
            if "full" in cause.lower()
            else "fix the database (see `emugen status`)"
        )
        raise StoreRefused(
            f"cannot {doing}: the database at {url} refused: {cause}; "
            f"{fix}, then run the command again"
        ) from None


# -- ticks that could not be recorded ----------------------------------------------------------


def park_tick(client: Any, stream: str, scheduled_at: datetime, reason: str, detail: str) -> None:
    client.rpush(
        PARKED_KEY,
        json.dumps(
            {
                "stream": stream,
                "scheduled_at": scheduled_at.isoformat(),
                "reason": reason,
                "detail": detail,
                "at": datetime.now(UTC).isoformat(),
            }
        ),
    )


def record_or_park(
    engine: Engine,
    client: Any,
    source: str,
    stream: str,
    scheduled_at: datetime,
    reason: str,
    detail: str,
) -> bool:
    """Record the skipped tick; when the store refuses, park it in Redis. True if recorded."""
    try:
        with write_session(engine) as session:
            record_skip(session, stream, scheduled_at, reason, detail)
        return True
    except StoreFileGone:
        raise  # a ghost store: nothing to park for, the process must stop
    except SQLAlchemyError as exc:
        report_fault(client, source, exc)
        try:
            if client is None:
                raise RuntimeError("no Redis broker to park it in")
            park_tick(client, stream, scheduled_at, reason, detail)
        except Exception:  # noqa: BLE001 - both stores down: the log is all that is left
            logger.exception(
                "tick %s %s is lost: neither the store nor Redis took it",
                stream,
                scheduled_at.isoformat(),
            )
            return False
        logger.warning(
            "store refused the %s skip of %s %s (%s): parked in Redis until it is back",
            reason,
            stream,
            scheduled_at.isoformat(),
            describe(exc),
        )
        return False


def _unrecorded(session: Any, ticks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The parked ticks that are neither a batch nor an already recorded skip."""
    fresh, seen = [], set()
    for tick in ticks:
        at = datetime.fromisoformat(tick["scheduled_at"])
        if (tick["stream"], at) in seen:
            continue  # parked twice (a retry and its expiry): one skip
        seen.add((tick["stream"], at))
        for model in (BatchRow, SkippedTick):
            found = session.scalar(
                select(model.stream)
                .where(model.stream == tick["stream"], model.scheduled_at == at)
                .limit(1)
            )
            if found is not None:
                break
        else:
            fresh.append(tick)
    return fresh


def drain(engine: Engine, client: Any, source: str) -> int:
    """Write parked ticks back as skips, oldest first; how many were written.

    A tick leaves Redis only after its transaction committed, so a store that refuses again
    halfway loses nothing (and a tick written twice is recognised by its (stream, tick)).
    """
    written = 0
    while client is not None:
        raw = client.lrange(PARKED_KEY, 0, DRAIN_CHUNK - 1)
        if not raw:
            break
        ticks = [json.loads(item) for item in raw]
        try:
            with write_session(engine) as session:
                fresh = _unrecorded(session, ticks)
                for tick in fresh:
                    session.add(
                        SkippedTick(
                            at=datetime.fromisoformat(tick["at"]),
                            stream=tick["stream"],
                            scheduled_at=datetime.fromisoformat(tick["scheduled_at"]),
                            reason=tick["reason"],
                            detail=tick["detail"],
                        )
                    )
        except SQLAlchemyError as exc:
            report_fault(client, source, exc)
            break
        client.ltrim(PARKED_KEY, len(raw), -1)
        written += len(fresh)
    if written:
        client.delete(FAULT_KEY)  # the store took writes again
        logger.info("the store is back: %d parked ticks recorded as skips", written)
    return written


# -- what readers show -------------------------------------------------------------------------


def problems(
    file_problem: str | None,
    fault: dict[str, Any] | None,
    parked: int | None,
    now: datetime | None = None,
) -> list[str]:
    """One line per thing wrong with the store, naming the database's own error."""
    lines = [] if file_problem is None else [file_problem]
    if fault is not None:
        age = ((now or datetime.now(UTC)) - datetime.fromisoformat(fault["at"])).total_seconds()
        lines.append(
            f"the database refuses writes: {fault['error']} (reported by "
            f"{fault['source']} {max(age, 0):.0f} s ago)"
        )
    if parked:
        lines.append(f"{parked} skipped ticks wait in Redis until the database takes writes again")
    return lines
