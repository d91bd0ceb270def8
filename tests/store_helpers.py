"""Helpers for storage tests: table snapshots and a from-scratch gold recomputation."""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine, select

from emugen.db.models import Base, GoldCompanyWindow, GoldRegionWindow, SilverCompany, SilverEvent
from emugen.db.session import read_session
from emugen.pipeline.gold import company_windows, region_windows

# stage timestamps and durations differ from run to run by nature
VOLATILE = {
    "generated_at",
    "bronze_at",
    "silver_at",
    "gold_at",
    "generate_ms",
    "bronze_ms",
    "silver_ms",
    "gold_ms",
    "applied_at",
    "worker",
    "task_id",
    "queue_depth",
}


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """Every table's rows (volatile columns left out), sorted: equal snapshots, equal stores."""
    out = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            cols = [c for c in table.c if c.name not in VOLATILE]
            rows = conn.execute(select(*cols)).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def gold_from_scratch(engine: Engine, seconds: int) -> tuple[list[tuple], list[tuple]]:
    """Recompute every `seconds`-long gold window directly from silver."""
    companies, regions = [], []
    with read_session(engine) as session:
        stamps = list(session.scalars(select(SilverEvent.event_ms)))
        stamps += session.scalars(select(SilverCompany.onboarded_ms))
        width = seconds * 1000
        for start in sorted({s // width * width for s in stamps}):
            companies += company_windows(session, seconds, start)
            regions += region_windows(session, seconds, start)
    return sorted(companies, key=repr), sorted(regions, key=repr)


def gold_tables(engine: Engine) -> tuple[list[tuple], list[tuple]]:
    with read_session(engine) as session:
        c = session.execute(select(*GoldCompanyWindow.__table__.c)).all()
        r = session.execute(select(*GoldRegionWindow.__table__.c)).all()
    return sorted((tuple(x) for x in c), key=repr), sorted((tuple(x) for x in r), key=repr)


# bookkeeping, not data: a live run checkpoints its watermark walk there, stamped
NOT_DATA = {"control_state", "config_reloads", "schema_version"}
# which batch reached gold first and so counted a shared driver: the completion order, like a
# timestamp (the driver rows themselves, and every gold count, do not depend on it)
COMPLETION_ORDER = {("gold_window_drivers", "batch_id")}


def digests(engine: Engine) -> dict[str, str]:
    """Per data table, a hash of its sorted rows; wall-clock columns (VOLATILE: stage times and
    durations, the worker's name; and redispatched_at) and COMPLETION_ORDER are left out."""
    out = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in NOT_DATA:
                continue
            cols = [
                c
                for c in table.c
                if c.name not in VOLATILE | {"redispatched_at"}
                and (table.name, c.name) not in COMPLETION_ORDER
            ]
            rows = sorted(repr(tuple(r)) for r in conn.execute(select(*cols)))
            out[table.name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return out
