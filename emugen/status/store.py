"""What reading the store cannot show: its file deleted, its writes refused, ticks parked.

The CLI asks Redis itself (`store_state`); the dashboard passes what its broker probe read
(`store_health`). Both answer with one shape, built in `store_view`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from emugen.db import storefile
from emugen.fleet.outage import describe, outage, problems


def store_view(file_problem: str | None, seen: dict[str, Any]) -> dict[str, Any]:
    """`seen` (the fault and parked ticks Redis holds) with the file's problem; `ok` is
    False while any of them holds."""
    return {
        **seen,
        "file_problem": file_problem,
        "ok": file_problem is None and seen["fault"] is None,
        "problems": problems(file_problem, seen["fault"], seen["parked_ticks"]),
    }


def store_state(engine: Engine, client: Any) -> dict[str, Any]:
    """The store's state for `emugen status`, asking Redis (`client`, or None) directly."""
    seen: dict[str, Any] = {"fault": None, "parked_ticks": None, "broker_error": None}
    if client is not None:
        try:
            seen.update(outage(client))
        except Exception as exc:  # noqa: BLE001 - the broker's own outage is reported elsewhere
            seen["broker_error"] = describe(exc)
    return store_view(storefile.problem(engine), seen)


def store_health(session: Session, probe: dict[str, Any]) -> dict[str, Any]:
    """The store's state for the dashboard, from what its broker probe read."""
    seen = probe.get("store") or {"fault": None, "parked_ticks": None}
    return store_view(storefile.problem(session.get_bind()), seen)
