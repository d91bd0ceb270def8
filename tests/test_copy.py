"""COPY on PostgreSQL stores exactly what Core's row-by-row INSERT stored, skips as it skipped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, Table, text
from sqlalchemy.dialects import postgresql

from emugen.db import bulk
from emugen.db import copy as copy_module
from emugen.db import stream as stream_module
from emugen.db.bulk import bulk_insert
from emugen.db.models import Base, ConfigReload, Quarantine, SilverCompany, SilverEvent
from emugen.db.seen import SeenKeys
from emugen.db.session import init_db, make_engine, write_session
from emugen.db.stream import StreamLoad, fast_or_exact
from emugen.vocabulary import Stream
from tests.test_store import dirty_settings, land_round

pytestmark = pytest.mark.postgres

# the tables whose rows bronze and silver load in bulk (gold upserts its own)
LOADED = (
    "bronze_records",
    "injected_defects",
    "planned_companies",
    "silver_companies",
    "silver_events",
    "quarantine",
)


def _core_insert(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    skip_existing: bool = False,
) -> None:
    """The path bulk_insert took on PostgreSQL before COPY: Core's executemany."""
    statement: Any = (
        postgresql.insert(table).on_conflict_do_nothing() if skip_existing else table.insert()
    )
    connection.execute(statement, [dict(zip(columns, row, strict=True)) for row in rows])


def _contents(url: str, tables: Sequence[str]) -> dict[str, list[str]]:
    """Each table's rows as the server renders them (jsonb, timestamptz and floats as text)."""
    engine = make_engine(url)
    out = {}
    with engine.connect() as conn:
        for name in tables:
            key = ", ".join(c.name for c in Base.metadata.tables[name].primary_key.columns)
            out[name] = list(
                conn.execute(text(f"SELECT t::text FROM {name} t ORDER BY {key}")).scalars()
            )
    engine.dispose()
    return out


def _filled(url: str) -> dict[str, list[str]]:
    engine = make_engine(url)
    init_db(engine)
    settings = dirty_settings(rate=0.3, size=200)
    for n in range(6):  # fixed ticks: both stores get the same bytes
        land_round(engine, settings, n)
    engine.dispose()
    return _contents(url, LOADED)


@pytest.fixture
def pg_urls(tmp_path):
    from emugen.lab import private_database
    from tests.conftest import PG_URL, _postgres_or_skip

    _postgres_or_skip()
    with (
        private_database(PG_URL, tmp_path, "copy") as first,
        private_database(PG_URL, tmp_path, "core") as second,
    ):
        yield first, second


def test_the_copy_path_stores_every_loaded_table_exactly_as_the_core_insert_path(
    pg_urls, monkeypatch
):
    copied = _filled(pg_urls[0])
    monkeypatch.setattr(bulk, "copy_rows", _core_insert)
    inserted = _filled(pg_urls[1])
    assert copied == inserted
    # dirty batches: duplicates skipped, rows quarantined, timestamps and nulls stored
    assert all(copied[name] for name in LOADED)


def test_json_timestamps_and_booleans_go_in_as_the_core_insert_put_them(pg_urls, monkeypatch):
    at = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    reloads = [
        (at, "file", True, "f" * 32, "emulated", '{"b": 1, "a": [1, 2.5, null]}'),
        (at + timedelta(microseconds=1), "env", False, None, None, None),
    ]
    company = [("c-1", "Acme", "EU", True, at, 1, 2, 3, "companies-000000001", 0)]
    for url in pg_urls:
        engine = make_engine(url)
        init_db(engine)
        with write_session(engine) as session:
            bulk_insert(
                session,
                ConfigReload.__table__,
                ("at", "source", "accepted", "fingerprint", "mode", "problems"),
                reloads,
            )
            bulk_insert(
                session,
                SilverCompany.__table__,
                (
                    "company_id",
                    "company_name",
                    "region",
                    "active",
                    "onboarded_at",
                    "onboarded_ms",
                    "drivers_count",
                    "trucks_count",
                    "batch_id",
                    "row_no",
                ),
                company,
                skip_existing=True,
            )
        engine.dispose()
        monkeypatch.setattr(bulk, "copy_rows", _core_insert)  # the second store: Core
    copied, inserted = (_contents(url, ("config_reloads", "silver_companies")) for url in pg_urls)
    assert copied == inserted
    # parsed by the server into jsonb (its keys sorted), not kept as the text given
    assert '{""a"": [1, 2.5, null], ""b"": 1}' in copied["config_reloads"][0]


def test_a_naive_timestamp_is_refused_on_the_copy_path_as_on_every_other(pg_urls):
    engine = make_engine(pg_urls[0])
    init_db(engine)
    row = ("e-1", "c", "d", "t", "delivered", datetime(2026, 1, 1), 0, None, None, "b", 0)
    with pytest.raises(ValueError, match="naive datetime"), write_session(engine) as session:
        bulk_insert(session, SilverEvent.__table__, _EVENT_COLUMNS, [row])
    engine.dispose()


_EVENT_COLUMNS = (
    "event_id",
    "company_id",
    "driver_id",
    "truck_id",
    "event_type",
    "event_timestamp",
    "event_ms",
    "lat",
    "lon",
    "batch_id",
    "row_no",
)


def _event(event_id: str, row_no: int, batch: str = "events-000000001") -> tuple[Any, ...]:
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=row_no)
    return (event_id, "c", "d", "t", "delivered", at, row_no * 1000, 1.5, None, batch, row_no)


def _stored_events(engine) -> list[tuple[str, str, int]]:  # noqa: ANN001
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("SELECT event_id, batch_id, row_no FROM silver_events ORDER BY event_id")
            )
        ]


@pytest.mark.parametrize("race", [False, True], ids=["keys-looked-up", "copy-clashes"])
def test_skip_existing_keeps_the_first_row_of_a_key_and_leaves_held_keys_alone(
    pg_urls, monkeypatch, race
):
    if race:
        # as if a concurrent batch inserted the held key after the lookup: COPY clashes and
        # the rows go through the staging table and ON CONFLICT DO NOTHING instead
        monkeypatch.setattr(copy_module, "_held_keys", lambda *_: set())
    engine = make_engine(pg_urls[0])
    init_db(engine)
    with write_session(engine) as session:
        bulk_insert(
            session, SilverEvent.__table__, _EVENT_COLUMNS, [_event("held", 0, "events-000000000")]
        )
    with write_session(engine) as session:
        bulk_insert(
            session,
            SilverEvent.__table__,
            _EVENT_COLUMNS,
            [_event("a", 1), _event("held", 2), _event("b", 3), _event("a", 4), _event("c", 5)],
            skip_existing=True,
        )
        # quarantine's key has two columns
        bulk_insert(
            session,
            Quarantine.__table__,
            ("batch_id", "row_no", "stream", "reason", "field", "detail"),
            [
                ("b1", 1, Stream.events.value, "duplicate", None, "first"),
                ("b1", 1, Stream.events.value, "duplicate", None, "second"),
                ("b1", 2, Stream.events.value, "duplicate", None, "third"),
            ],
            skip_existing=True,
        )
    assert _stored_events(engine) == [
        ("a", "events-000000001", 1),
        ("b", "events-000000001", 3),
        ("c", "events-000000001", 5),
        ("held", "events-000000000", 0),
    ]
    with engine.connect() as conn:
        details = list(
            conn.execute(text("SELECT detail FROM quarantine ORDER BY row_no")).scalars()
        )
    assert details == ["first", "third"]
    engine.dispose()


def test_a_failed_stage_leaves_nothing_of_its_copied_rows(pg_urls, monkeypatch):
    # no lookup: every load below clashes and takes the staging table, made in the
    # transaction that fails, so the next load must make it again
    monkeypatch.setattr(copy_module, "_held_keys", lambda *_: set())
    engine = make_engine(pg_urls[0])
    init_db(engine)
    with write_session(engine) as session:
        bulk_insert(session, SilverEvent.__table__, _EVENT_COLUMNS, [_event("x", 0)])
    with pytest.raises(RuntimeError, match="after the load"), write_session(engine) as session:
        bulk_insert(
            session,
            SilverEvent.__table__,
            _EVENT_COLUMNS,
            [_event("x", 1), _event("y", 2)],
            skip_existing=True,
        )
        raise RuntimeError("the stage failed after the load")
    assert [e for e, *_ in _stored_events(engine)] == ["x"]
    with write_session(engine) as session:
        bulk_insert(
            session,
            SilverEvent.__table__,
            _EVENT_COLUMNS,
            [_event("x", 1), _event("z", 3)],
            skip_existing=True,
        )
    assert [e for e, *_ in _stored_events(engine)] == ["x", "z"]
    engine.dispose()


def test_the_json_types_bench_times_each_type_and_says_jsonb_reorders_a_spec(pg_urls):
    from click.testing import CliRunner

    from emugen.cli import main
    from tests.conftest import PG_URL

    out = CliRunner().invoke(
        main, ["bench", "json-types", "--database", PG_URL, "--events", "2000", "--repeat", "1"]
    )
    assert out.exit_code == 0, out.output
    rows = {line.split()[0]: line for line in out.output.splitlines()[1:]}
    assert set(rows) == {"text", "json", "jsonb"}
    assert rows["json"].endswith("yes") and rows["jsonb"].endswith("no")
    refused = CliRunner().invoke(main, ["bench", "json-types", "--database", "sqlite:///x.db"])
    assert refused.exit_code == 2 and "give a postgresql:// URL" in refused.output


def test_bench_pipeline_on_postgresql_prints_its_rate_beside_sqlite_from_the_same_run(pg_urls):
    import re

    from click.testing import CliRunner

    from emugen.cli import main
    from tests.conftest import PG_URL

    out = CliRunner().invoke(
        main, ["bench", "pipeline", "--database", PG_URL, "--events", "2000", "--repeat", "2"]
    )
    assert out.exit_code == 0, out.output
    assert out.output.startswith("pipeline on postgresql")
    assert re.search(
        r"baseline: the same batch on SQLite, runs alternated with these "
        r"\(events/s each: [\d,]+, [\d,]+\)",
        out.output,
    )
    assert re.search(r"postgresql/sqlite rate: \d+\.\d\dx", out.output)


_CHUNKS = (
    [_event("a", 1), _event("b", 2), _event("a", 3)],
    [_event("c", 4), _event("d", 5)],
    [_event("b", 6), _event("e", 7), _event("c", 8)],
)
_FIRSTS = [
    ("a", "events-000000001", 1),
    ("b", "events-000000001", 2),
    ("c", "events-000000001", 4),
    ("d", "events-000000001", 5),
    ("e", "events-000000001", 7),
]
_QUARANTINE_COLUMNS = ("batch_id", "row_no", "stream", "reason", "field", "detail")


def _streamed(session: Any, chunks: Sequence[list[tuple[Any, ...]]]) -> str:
    load = StreamLoad(
        session, SilverEvent.__table__, _EVENT_COLUMNS, Quarantine.__table__, _QUARANTINE_COLUMNS
    )
    for n, chunk in enumerate(chunks):
        load.add(
            chunk,
            [("events-000000001", 100 + n, Stream.events.value, "duplicate", None, f"chunk {n}")],
        )
    load.flush()
    return "streamed"


def _exact(session: Any, chunks: Sequence[list[tuple[Any, ...]]]) -> str:
    for chunk in chunks:
        bulk_insert(session, SilverEvent.__table__, _EVENT_COLUMNS, chunk, skip_existing=True)
    return "exact"


@pytest.mark.parametrize("bits", [1 << 25, 8], ids=["roomy-bitmap", "keys-share-bits"])
def test_a_streamed_load_keeps_the_first_row_of_each_key_and_every_quarantine_row(
    pg_urls, monkeypatch, bits
):
    # with 8 bits most new keys read as "maybe seen": they wait for the exact path and land
    monkeypatch.setattr(stream_module, "SeenKeys", lambda: SeenKeys(bits))
    engine = make_engine(pg_urls[0])
    init_db(engine)
    with write_session(engine) as session:
        assert (
            fast_or_exact(
                session, lambda: _streamed(session, _CHUNKS), lambda: _exact(session, _CHUNKS)
            )
            == "streamed"
        )
    assert _stored_events(engine) == _FIRSTS
    with engine.connect() as conn:
        details = list(
            conn.execute(text("SELECT detail FROM quarantine ORDER BY row_no")).scalars()
        )
    assert details == ["chunk 0", "chunk 1", "chunk 2"]
    engine.dispose()


def test_a_streamed_load_that_meets_a_held_key_is_undone_and_done_the_exact_way(pg_urls):
    engine = make_engine(pg_urls[0])
    init_db(engine)
    with write_session(engine) as session:  # "d" is in silver from another batch
        bulk_insert(
            session, SilverEvent.__table__, _EVENT_COLUMNS, [_event("d", 0, "events-000000000")]
        )
    with write_session(engine) as session:
        assert (
            fast_or_exact(
                session, lambda: _streamed(session, _CHUNKS), lambda: _exact(session, _CHUNKS)
            )
            == "exact"
        )
    assert _stored_events(engine) == [*_FIRSTS[:3], ("d", "events-000000000", 0), _FIRSTS[4]]
    with engine.connect() as conn:  # nothing of the streamed try is left
        assert conn.execute(text("SELECT count(*) FROM quarantine")).scalar() == 0
    engine.dispose()


def test_silver_read_in_keyset_pages_stores_what_one_page_stores(pg_urls, monkeypatch):
    from emugen.pipeline import silver

    whole = _filled(pg_urls[0])  # 200-event batches: one page each
    monkeypatch.setattr(silver, "PAGE", 30)
    monkeypatch.setattr(silver, "CHUNK", 7)  # pages of 30 split 7+7+7+7+2
    paged = _filled(pg_urls[1])
    assert paged == whole
    assert len(whole["silver_events"]) > 3 * 30  # many pages were read
