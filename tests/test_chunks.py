"""Chunked generation, landing and refining: the chunk size changes no byte, a failure leaves
nothing behind, and a Parquet file past one row group reads back whole."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from emugen.db.models import BatchRow, BronzeRecord, LandedFile, Quarantine, SilverEvent
from emugen.db.session import init_db, make_engine, read_session, write_session
from emugen.generate import build_spec, draft, generate
from emugen.pipeline import bronze, silver
from emugen.pipeline.bronze import generate_and_land
from emugen.pipeline.runner import refine_and_build
from emugen.sinks import lander, landing
from emugen.sinks.landing import BatchFacts, data_pieces
from emugen.vocabulary import Stream
from tests.conftest import make_settings

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DIRTY = make_settings(companies={"quality": {"rate": 0.3}}, events={"quality": {"rate": 0.3}})
EVENTS = build_spec(DIRTY, "events", 4, scheduled_at=AT, size=2500, watermark=100)
COMPANIES = build_spec(DIRTY, "companies", 2, scheduled_at=AT, first_ordinal=100)
REFERENCE = {s.stream: (generate(s).lines(), generate(s).truth) for s in (EVENTS, COMPANIES)}


@hsettings(max_examples=40, deadline=None)
@given(size=st.integers(1, 3000), spec=st.sampled_from([EVENTS, COMPANIES]))
def test_the_chunk_size_changes_no_generated_byte_and_no_truth(size, spec):
    planned = draft(spec)
    lines = [line for chunk in planned.line_chunks(size) for line in chunk]
    assert all(len(c) <= size for c in planned.line_chunks(size))
    assert (lines, planned.truth) == REFERENCE[spec.stream]


def _facts(rows: int) -> BatchFacts:
    return BatchFacts(
        "events-000000004", "events", 4, "production", "{}", AT - timedelta(hours=1), AT, AT, rows
    )


@hsettings(max_examples=30, deadline=None)
@given(size=st.integers(1, 3000), fmt=st.sampled_from(["jsonl", "parquet"]))
def test_the_chunk_size_changes_no_landed_byte(size, fmt):
    lines = REFERENCE[Stream.events][0]
    whole = b"".join(data_pieces(_facts(len(lines)), [lines], fmt))
    chunks = [lines[i : i + size] for i in range(0, len(lines), size)]
    assert b"".join(data_pieces(_facts(len(lines)), chunks, fmt)) == whole


def test_parquet_past_one_row_group_gets_one_per_row_group_and_reads_back_whole(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(landing, "ROW_GROUP", 1000)
    lines = REFERENCE[Stream.events][0]
    path = tmp_path / "f.parquet"
    path.write_bytes(
        b"".join(data_pieces(_facts(len(lines)), [lines[:700], lines[700:]], "parquet"))
    )
    parquet = pq.ParquetFile(path)
    assert [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)] == [
        1000,
        1000,
        500,
    ]
    table = parquet.read()
    assert table.column("payload").to_pylist() == lines
    assert table.column("row_no").to_pylist() == list(range(len(lines)))


def _store(tmp_path: Path, name: str):
    engine = make_engine(f"sqlite:///{tmp_path / name}.db")
    init_db(engine)
    return engine


def _table_digest(engine, table: str) -> str:
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT * FROM {table} ORDER BY rowid")).all()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def _refined(tmp_path: Path, name: str) -> object:
    engine = _store(tmp_path, name)
    companies = generate_and_land(engine, DIRTY, "companies", AT - timedelta(hours=2))
    refine_and_build(engine, companies.batch_id)
    events = generate_and_land(engine, DIRTY, "events", AT, size=2500)
    refine_and_build(engine, events.batch_id)
    return engine


@pytest.mark.parametrize("chunk", [7, 999])
def test_silver_writes_the_same_rows_in_the_same_order_whatever_its_chunk_size(
    tmp_path, monkeypatch, chunk
):
    reference = _refined(tmp_path, "reference")
    monkeypatch.setattr(silver, "CHUNK", chunk)
    monkeypatch.setattr(bronze, "CHUNK", chunk)
    chunked = _refined(tmp_path, "chunked")
    for table in (
        "bronze_records",
        "injected_defects",
        "silver_events",
        "silver_companies",
        "quarantine",
        "gold_company_window",
        "gold_region_window",
    ):
        assert _table_digest(chunked, table) == _table_digest(reference, table), table
    reference.dispose()
    chunked.dispose()


def _failing_after(calls: int, real):
    seen = {"n": 0}

    def insert(*args, **kwargs):
        seen["n"] += 1
        if seen["n"] > calls:
            raise RuntimeError("disk gone mid-batch")
        return real(*args, **kwargs)

    return insert


def test_a_silver_failing_midway_leaves_no_row_and_the_batch_in_bronze(tmp_path, monkeypatch):
    engine = _store(tmp_path, "s")
    companies = generate_and_land(engine, DIRTY, "companies", AT - timedelta(hours=2))
    refine_and_build(engine, companies.batch_id)
    events = generate_and_land(engine, DIRTY, "events", AT, size=2500)
    monkeypatch.setattr(silver, "CHUNK", 500)
    monkeypatch.setattr(silver, "bulk_insert", _failing_after(4, silver.bulk_insert))
    with pytest.raises(RuntimeError, match="mid-batch"), write_session(engine) as session:
        silver.run(session, events.batch_id)
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(SilverEvent)) == 0
        assert (
            session.scalar(
                select(func.count())
                .select_from(Quarantine)
                .where(Quarantine.batch_id == events.batch_id)
            )
            == 0
        )
        assert session.get(BatchRow, events.batch_id).status == "bronze"
    engine.dispose()


def test_a_bronze_failing_midway_leaves_no_batch_and_no_record(tmp_path, monkeypatch):
    engine = _store(tmp_path, "b")
    monkeypatch.setattr(bronze, "CHUNK", 5)  # a batch of companies is 10 or more rows
    monkeypatch.setattr(bronze, "bulk_insert", _failing_after(1, bronze.bulk_insert))
    with pytest.raises(RuntimeError, match="mid-batch"):
        generate_and_land(engine, DIRTY, "companies", AT)
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(BatchRow)) == 0
        assert session.scalar(select(func.count()).select_from(BronzeRecord)) == 0
    engine.dispose()


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_landing_failing_midway_leaves_no_file_and_no_temporary(tmp_path, monkeypatch, fmt):
    engine = _store(tmp_path, "l")
    settings = make_settings(
        landing={"enabled": True, "root": str(tmp_path / "zone"), "format": fmt}
    )
    landed = generate_and_land(engine, settings, "companies", AT)
    real = lander.bronze_chunks

    def failing(conn, batch_id, size=landing.CHUNK):
        chunks = real(conn, batch_id, size=40)
        yield next(chunks)
        raise RuntimeError("store gone mid-file")

    monkeypatch.setattr(lander, "bronze_chunks", failing)
    assert lander.land(engine, settings.landing, landed.batch_id) is None
    assert [p for p in (tmp_path / "zone").rglob("*") if p.is_file()] == []
    with read_session(engine) as session:
        assert session.get(LandedFile, landed.batch_id) is None
    monkeypatch.setattr(lander, "bronze_chunks", real)
    assert lander.land(engine, settings.landing, landed.batch_id, retry_now=True) is not None
    engine.dispose()
