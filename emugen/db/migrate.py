"""Schema upgrades in place: a store made by an earlier emugen is converted, not refused."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import case, func, inspect, select, text
from sqlalchemy.orm import Session

from emugen.db.bulk import dialect_insert
from emugen.db.columns import UTCDateTime
from emugen.db.models import Base, BatchRow, GoldWindowDriver, SilverEvent
from emugen.vocabulary import WINDOW_SECONDS

# The versions (models.SCHEMA_VERSION is the current one):
# 3: SQLite stamps as ISO-8601 UTC text, PostgreSQL JSON columns as jsonb
# 4: silver rows indexed by (batch_id, row_no), replacing the batch_id-only indexes;
#    gold_window_drivers (gold adds each batch's share)
# 5: batches.task_id (the generate task, for Flower), batches.queue_depth (history chart);
#    indexes for the watermark walk and the reaper's landing check
# 6: arrival_ledger and gold_window_revisions (db/ledger.py), new tables that create_all adds;
#    batches.redelivered_count

# the PostgreSQL type of every JSON column (a version-2 store's text is converted)
JSON_COLUMNS = {
    "batches": {
        "spec": "json",
        "excluded_ordinals": "jsonb",
        "injected_by_type": "jsonb",
        "quarantined_by_reason": "jsonb",
    },
    "config_reloads": {"problems": "jsonb"},
}
_MIGRATION_LOCK_KEY = 0x656D7567656E01  # PostgreSQL advisory lock: one upgrader at a time
UPGRADABLE = (2, 3, 4, 5)
# version 4 indexes silver rows by (batch_id, row_no) (init_db creates the new indexes);
# the batch_id-only ones they replace would only slow every silver insert
SUPERSEDED_INDEXES = ("ix_silver_events_batch_id", "ix_silver_companies_batch_id")
# columns versions 5 and 6 add to an existing table: (table, column), each nullable
ADDED_COLUMNS = (
    ("batches", "task_id"),
    ("batches", "queue_depth"),
    ("batches", "redelivered_count"),
)


def lock(session: Session) -> None:
    """Serialise schema checks across processes starting together (SQLite: the IMMEDIATE
    write transaction already serialises them)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))


def upgrade(session: Session, found: int) -> None:
    """Bring a version-2 to -5 store to the current version inside the caller's transaction.

    New tables and indexes need no step here: init_db creates them (create_all before this
    runs, the indexes after).
    """
    if found == 2:
        if session.get_bind().dialect.name == "sqlite":
            _iso_utc_stamps(session)
        elif session.get_bind().dialect.name == "postgresql":
            _jsonb_columns(session)
    for index in SUPERSEDED_INDEXES:
        session.execute(text(f"DROP INDEX IF EXISTS {index}"))
    if found <= 3:
        _counted_drivers(session)
    _add_columns(session)


def _add_columns(session: Session) -> None:
    """Versions 5 and 6's nullable columns, added where missing (a store that has them, e.g.
    one stamped back to an older version by a test, is left as it is)."""
    connection = session.connection()
    dialect = connection.dialect
    for table_name, column_name in ADDED_COLUMNS:
        present = {c["name"] for c in inspect(connection).get_columns(table_name)}
        if column_name in present:
            continue
        column = Base.metadata.tables[table_name].c[column_name]
        kind = column.type.compile(dialect=dialect)
        session.execute(text(f"ALTER TABLE {table_name} ADD COLUMN {column_name} {kind}"))


def stamp_columns() -> list[tuple[str, str]]:
    return [
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, UTCDateTime)
    ]


def canonical(value: str) -> str:
    """Any stamp an earlier emugen stored (naive UTC, with or without fraction or offset)
    in the one stored layout, `YYYY-MM-DDTHH:MM:SS.ffffffZ`."""
    moment = datetime.fromisoformat(value)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat("T", "microseconds")[:26] + "Z"


def _iso_utc_stamps(session: Session) -> None:
    for table, column in stamp_columns():
        # the layout version 2 wrote everywhere, in one statement; anything else row by row
        session.execute(
            text(
                f"UPDATE {table} SET {column} = substr({column}, 1, 10) || 'T' || "
                f"substr({column}, 12) || 'Z' "
                f"WHERE length({column}) = 26 AND substr({column}, 11, 1) = ' '"
            )
        )
        odd = session.execute(
            text(
                f"SELECT rowid, {column} FROM {table} WHERE {column} IS NOT NULL AND NOT "
                f"(length({column}) = 27 AND substr({column}, 11, 1) = 'T' "
                f"AND substr({column}, 27, 1) = 'Z')"
            )
        ).all()
        for rowid, value in odd:
            session.execute(
                text(f"UPDATE {table} SET {column} = :v WHERE rowid = :r"),
                {"v": canonical(value), "r": rowid},
            )


def _jsonb_columns(session: Session) -> None:
    for table, columns in JSON_COLUMNS.items():
        for column, kind in columns.items():
            now = session.scalar(
                text(
                    "SELECT data_type FROM information_schema.columns WHERE table_schema = "
                    "current_schema() AND table_name = :t AND column_name = :c"
                ),
                {"t": table, "c": column},
            )
            if now == "text":
                session.execute(
                    text(
                        f"ALTER TABLE {table} ALTER COLUMN {column} "
                        f"TYPE {kind} USING {column}::{kind}"
                    )
                )


def _counted_drivers(session: Session) -> None:
    """Version 4: gold adds each batch's distinct drivers once (gold_window_drivers); record
    those the gold of an earlier emugen already counted, from silver, so none counts twice."""
    width = case(*((BatchRow.mode == mode.value, s * 1000) for mode, s in WINDOW_SECONDS.items()))
    seconds, window = width // 1000, SilverEvent.event_ms // width * width
    counted = (
        select(
            seconds,
            window,
            SilverEvent.company_id,
            SilverEvent.driver_id,
            func.min(SilverEvent.batch_id),
        )
        .join(BatchRow, BatchRow.batch_id == SilverEvent.batch_id)
        .where(BatchRow.status == "gold")
        .group_by(seconds, window, SilverEvent.company_id, SilverEvent.driver_id)
    )
    session.execute(
        dialect_insert(session, GoldWindowDriver.__table__)
        .from_select(
            ["window_seconds", "window_start_ms", "company_id", "driver_id", "batch_id"], counted
        )
        .on_conflict_do_nothing()
    )
