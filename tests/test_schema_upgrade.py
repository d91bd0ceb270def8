"""Schema 3: SQLite stamps in one ISO-8601 UTC form, JSON columns as jsonb on PostgreSQL;
schema 4: silver indexed by (batch_id, row_no), and gold's record of the drivers it counted;
a version-2 or -3 store is converted in place."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import inspect, text

from emugen.db.migrate import JSON_COLUMNS, canonical, stamp_columns
from emugen.db.models import SCHEMA_VERSION
from emugen.db.session import init_db, make_engine, read_session
from emugen.pipeline.replay import replay
from emugen.pipeline.runner import run_pipeline
from emugen.status.report import status
from tests.conftest import make_settings
from tests.store_helpers import gold_from_scratch, gold_tables
from tests.test_gold import _shared_drivers
from tests.test_store import dirty_settings, land_round

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _filled(url: str):  # noqa: ANN202
    engine = make_engine(url)
    init_db(engine)
    run_pipeline(engine, make_settings(), 2)
    return engine


def _stored_stamps(engine) -> list[str]:  # noqa: ANN001
    found = []
    with engine.connect() as conn:
        for table, column in stamp_columns():
            found += [
                v
                for (v,) in conn.execute(
                    text(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")
                )
            ]
    return found


def test_every_sqlite_stamp_is_stored_as_one_iso_8601_utc_form(tmp_path):
    engine = _filled(f"sqlite:///{tmp_path / 'emugen.db'}")
    stamps = _stored_stamps(engine)
    assert len(stamps) > 50
    assert [s for s in stamps if not ISO_UTC.match(s)] == []
    engine.dispose()


def test_a_version_2_sqlite_store_is_converted_in_place_and_keeps_working(tmp_path):
    url = f"sqlite:///{tmp_path / 'emugen.db'}"
    engine = _filled(url)
    with read_session(engine) as session:
        before = status(session)
    # back to what version 2 wrote: naive text with a space; plus an odd second-only stamp
    with engine.begin() as conn:
        for table, column in stamp_columns():
            conn.execute(
                text(
                    f"UPDATE {table} SET {column} = replace(substr({column}, 1, 26), "
                    f"'T', ' ') WHERE {column} IS NOT NULL"
                )
            )
        conn.execute(text("UPDATE schema_version SET version = 2"))
        conn.execute(
            text("UPDATE batches SET redispatched_at = '2026-01-01 00:00:07' WHERE seq = 1")
        )
    engine.dispose()

    upgraded = make_engine(url)
    init_db(upgraded)
    assert [s for s in _stored_stamps(upgraded) if not ISO_UTC.match(s)] == []
    with read_session(upgraded) as session:
        after = status(session)
        versions = session.execute(text("SELECT version FROM schema_version")).scalars().all()
        batch_id = after["latest"][0]["batch_id"]
        assert replay(session, batch_id).identical
    assert after == before
    assert SCHEMA_VERSION in versions
    run_pipeline(upgraded, make_settings(), 1)  # and it takes new batches
    upgraded.dispose()


def test_canonical_reads_every_layout_an_earlier_store_held():
    assert canonical("2026-01-01 00:00:07") == "2026-01-01T00:00:07.000000Z"
    assert canonical("2026-01-01 00:00:07.123456") == "2026-01-01T00:00:07.123456Z"
    assert canonical("2026-01-01T01:00:07.5+01:00") == "2026-01-01T00:00:07.500000Z"


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_json_columns_are_jsonb_on_postgresql_and_a_version_2_store_is_altered_in_place(
    database_url,
):
    engine = _filled(database_url)

    def kinds() -> set[str]:
        with engine.connect() as conn:
            return {
                conn.scalar(
                    text(
                        "SELECT data_type FROM information_schema.columns WHERE table_schema = "
                        "current_schema() AND table_name = :t AND column_name = :c"
                    ),
                    {"t": t, "c": c},
                )
                for t, columns in JSON_COLUMNS.items()
                for c in columns
            }

    assert kinds() == {"jsonb", "json"}  # json: the spec keeps its key order (see DECISIONS)
    with engine.connect() as conn:
        payload = conn.scalar(text("SELECT pg_typeof(payload)::text FROM bronze_records LIMIT 1"))
        assert payload == "text"  # bronze keeps malformed records byte for byte
    with read_session(engine) as session:
        before = status(session)
    with engine.begin() as conn:
        for table, columns in JSON_COLUMNS.items():
            for column in columns:
                conn.execute(text(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE text"))
        conn.execute(text("UPDATE schema_version SET version = 2"))
    assert kinds() == {"text"}
    init_db(engine)
    assert kinds() == {"jsonb", "json"}
    with read_session(engine) as session:
        after = status(session)
        spec = session.execute(text("SELECT spec->>'stream' FROM batches LIMIT 1")).scalar()
        assert replay(session, after["latest"][0]["batch_id"]).identical
    assert after == before
    assert spec in ("companies", "events")
    assert json.loads(json.dumps(after["reconciliation"])) == before["reconciliation"]


def test_a_version_4_store_gains_the_task_id_and_queue_depth_columns_in_place(database_url):
    engine = _filled(database_url)
    with read_session(engine) as session:
        before = status(session)
    with engine.begin() as conn:  # back to what version 4 made
        conn.execute(text("DROP INDEX ix_batches_history"))
        for column in ("task_id", "queue_depth"):
            conn.execute(text(f"ALTER TABLE batches DROP COLUMN {column}"))
        conn.execute(text("UPDATE schema_version SET version = 4"))
    engine.dispose()

    upgraded = make_engine(database_url)
    init_db(upgraded)
    with upgraded.connect() as conn:
        versions = conn.execute(text("SELECT version FROM schema_version")).scalars().all()
        rows = conn.execute(text("SELECT task_id, queue_depth FROM batches")).all()
    assert SCHEMA_VERSION >= 5 and SCHEMA_VERSION in versions
    assert rows and set(rows) == {(None, None)}  # unknown for batches landed before
    assert "ix_batches_history" in {i["name"] for i in inspect(upgraded).get_indexes("batches")}
    with read_session(upgraded) as session:
        assert status(session) == before
    run_pipeline(upgraded, make_settings(), 1)  # and it takes new batches
    init_db(upgraded)  # and a second start changes nothing
    upgraded.dispose()


def test_a_version_3_store_gets_silver_indexed_by_batch_and_row_instead_of_batch_alone(
    database_url,
):
    engine = _filled(database_url)
    with engine.begin() as conn:  # back to version 3's indexes
        for table in ("silver_events", "silver_companies"):
            conn.execute(text(f"DROP INDEX ix_{table}_batch_row"))
            conn.execute(text(f"CREATE INDEX ix_{table}_batch_id ON {table} (batch_id)"))
        conn.execute(text("UPDATE schema_version SET version = 3"))
    init_db(engine)
    names = {
        index["name"]
        for table in ("silver_events", "silver_companies")
        for index in inspect(engine).get_indexes(table)
    }
    assert {"ix_silver_events_batch_row", "ix_silver_companies_batch_row"} <= names
    assert not names & {"ix_silver_events_batch_id", "ix_silver_companies_batch_id"}
    with engine.connect() as conn:
        versions = set(conn.execute(text("SELECT version FROM schema_version")).scalars())
    assert versions == {3, SCHEMA_VERSION} and SCHEMA_VERSION >= 5
    engine.dispose()


def test_a_version_3_store_records_the_drivers_its_gold_counted_so_none_counts_twice(database_url):
    engine = make_engine(database_url)
    init_db(engine)
    settings = dirty_settings(rate=0.1, size=40)
    for n in range(4):
        land_round(engine, settings, n)
    with engine.begin() as conn:  # what version 3 held: gold, and no record of its drivers
        conn.execute(text("DELETE FROM gold_window_drivers"))
        conn.execute(text("UPDATE schema_version SET version = 3"))
    engine.dispose()

    upgraded = make_engine(database_url)
    init_db(upgraded)
    for n in range(4, 8):  # new batches add to the same windows
        land_round(upgraded, settings, n)
    assert _shared_drivers(upgraded) > 0
    assert gold_tables(upgraded) == gold_from_scratch(upgraded, 60)
    with read_session(upgraded) as session:
        versions = session.execute(text("SELECT version FROM schema_version")).scalars().all()
    assert SCHEMA_VERSION >= 5 and SCHEMA_VERSION in versions
    upgraded.dispose()


def test_a_version_3_store_gets_the_watermark_and_reaper_indexes_and_they_are_used(tmp_path):
    url = f"sqlite:///{tmp_path / 'emugen.db'}"
    engine = _filled(url)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_batches_stream_first_ordinal"))
        conn.execute(text("DROP INDEX ix_batches_bronze_at_id"))
        conn.execute(text("UPDATE schema_version SET version = 3"))
    engine.dispose()

    upgraded = make_engine(url)
    init_db(upgraded)
    with upgraded.connect() as conn:
        names = {
            n
            for (n,) in conn.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'batches'")
            )
        }
        assert {"ix_batches_stream_first_ordinal", "ix_batches_bronze_at_id"} <= names
        assert (
            SCHEMA_VERSION
            in conn.execute(text("SELECT version FROM schema_version")).scalars().all()
        )
        # the walk from a checkpoint probes the index instead of every company batch row
        plan = " ".join(
            row[3]
            for row in conn.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT first_ordinal FROM batches WHERE stream "
                    "= 'companies' "
                    "AND first_ordinal >= 10 ORDER BY first_ordinal"
                )
            )
        )
        assert "ix_batches_stream_first_ordinal" in plan and "TEMP B-TREE" not in plan
    run_pipeline(upgraded, make_settings(), 1)
    upgraded.dispose()


def test_the_next_company_batch_starts_where_the_latest_one_ends(tmp_path):
    from sqlalchemy import select

    from emugen.db.models import BatchRow

    engine = _filled(f"sqlite:///{tmp_path / 'emugen.db'}")
    run_pipeline(engine, make_settings(), 3)
    with read_session(engine) as session:
        rows = session.execute(
            select(BatchRow.first_ordinal, BatchRow.ordinal_count)
            .where(BatchRow.stream == "companies")
            .order_by(BatchRow.seq)
        ).all()
    assert len(rows) == 5
    assert all(
        first == prev_first + prev_count
        for (prev_first, prev_count), (first, _) in zip(rows, rows[1:], strict=False)
    )
    engine.dispose()


def test_a_version_5_store_gains_the_arrival_ledger_and_lands_arrival_conditions(database_url):
    engine = _filled(database_url)
    with read_session(engine) as session:
        before = status(session)
    with engine.begin() as conn:  # back to what version 5 made
        conn.execute(text("DROP TABLE arrival_ledger"))
        conn.execute(text("UPDATE schema_version SET version = 5"))
    engine.dispose()

    upgraded = make_engine(database_url)
    init_db(upgraded)
    with upgraded.connect() as conn:
        versions = set(conn.execute(text("SELECT version FROM schema_version")).scalars())
    assert SCHEMA_VERSION == 6 and versions == {5, SCHEMA_VERSION}
    assert "arrival_ledger" in inspect(upgraded).get_table_names()
    with read_session(upgraded) as session:
        assert status(session) == before
    late = make_settings(events={"arrival": {"late": {"rate": 0.5, "max_lateness": "PT5S"}}})
    run_pipeline(upgraded, late, 1, size=20)
    with upgraded.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM arrival_ledger")).scalar() == 10
    upgraded.dispose()
