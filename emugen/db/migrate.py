"""Schema upgrades in place: a store made by an earlier emugen is converted, not refused."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from emugen.db.columns import UTCDateTime
from emugen.db.models import JSON_COLUMNS, Base

_MIGRATION_LOCK_KEY = 0x656D7567656E01  # PostgreSQL advisory lock: one upgrader at a time
UPGRADABLE = (2, 3)


def lock(session: Session) -> None:
    """Serialise schema checks across processes starting together (SQLite: the IMMEDIATE
    write transaction already serialises them)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))


def upgrade(session: Session, found: int) -> None:
    """Bring a version-2 or -3 store to the current version inside the caller's transaction.

    3 -> 4 added indexes only, which init_db creates on any existing store before this runs.
    """
    if found == 2:
        if session.get_bind().dialect.name == "sqlite":
            _iso_utc_stamps(session)
        elif session.get_bind().dialect.name == "postgresql":
            _jsonb_columns(session)


def stamp_columns() -> list[tuple[str, str]]:
    return [(table.name, column.name) for table in Base.metadata.sorted_tables
            for column in table.columns if isinstance(column.type, UTCDateTime)]


def canonical(value: str) -> str:
    """Any stamp an earlier emugen stored (naive UTC, with or without fraction or offset)
    in the one stored layout, `YYYY-MM-DDTHH:MM:SS.ffffffZ`."""
    moment = datetime.fromisoformat(value)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat("T", "microseconds")[:26] + "Z"


def _iso_utc_stamps(session: Session) -> None:
    for table, column in stamp_columns():
        # the layout version 2 wrote everywhere, in one statement; anything else row by row
        session.execute(text(
            f"UPDATE {table} SET {column} = substr({column}, 1, 10) || 'T' || "
            f"substr({column}, 12) || 'Z' "
            f"WHERE length({column}) = 26 AND substr({column}, 11, 1) = ' '"))
        odd = session.execute(text(
            f"SELECT rowid, {column} FROM {table} WHERE {column} IS NOT NULL AND NOT "
            f"(length({column}) = 27 AND substr({column}, 11, 1) = 'T' "
            f"AND substr({column}, 27, 1) = 'Z')")).all()
        for rowid, value in odd:
            session.execute(text(f"UPDATE {table} SET {column} = :v WHERE rowid = :r"),
                            {"v": canonical(value), "r": rowid})


def _jsonb_columns(session: Session) -> None:
    for table, columns in JSON_COLUMNS.items():
        for column, kind in columns.items():
            now = session.scalar(text(
                "SELECT data_type FROM information_schema.columns WHERE table_schema = "
                "current_schema() AND table_name = :t AND column_name = :c"),
                {"t": table, "c": column})
            if now == "text":
                session.execute(text(f"ALTER TABLE {table} ALTER COLUMN {column} "
                                     f"TYPE {kind} USING {column}::{kind}"))
