"""Spark's file source reads the landing zone with nothing but the path and the schema."""

from __future__ import annotations

import os
import shutil

import pytest
from sqlalchemy import select

from emugen.db.models import BatchRow
from emugen.db.session import read_session
from emugen.pipeline.runner import run_pipeline
from emugen.sinks.lander import land
from tests.conftest import make_settings

pytestmark = pytest.mark.slow


def _need(what: str, present: bool) -> None:
    if present:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {what} is missing")
    pytest.skip(f"{what} is missing; CI runs this")


@pytest.fixture(scope="module")
def spark():
    _need("Java (java on PATH)", shutil.which("java") is not None)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        _need("pyspark (the dev extra)", False)
    session = (
        SparkSession.builder.master("local[1]")
        .appName("emugen-landing-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    yield session
    session.stop()


EVENT_FIELDS = ("event_id", "company_id", "driver_id", "truck_id", "event_type", "event_timestamp")


def test_spark_counts_what_bronze_holds_from_jsonl_and_parquet(spark, tmp_path):
    from pyspark.sql.types import StringType, StructField, StructType

    from emugen.db.session import init_db, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'emugen.db'}")
    init_db(engine)
    settings = make_settings(
        landing={"root": str(tmp_path / "jsonl")}, events={"quality": {"rate": 0.3}}
    )
    run_pipeline(engine, settings, 3)
    as_parquet = make_settings(
        landing={"root": str(tmp_path / "parquet"), "format": "parquet"}
    ).landing
    with read_session(engine) as session:
        batches = session.execute(
            select(BatchRow.batch_id, BatchRow.record_count).where(BatchRow.stream == "events")
        ).all()
    for batch_id, _ in batches:
        land(engine, as_parquet, batch_id)
    expected = sum(count for _, count in batches)

    schema = StructType([StructField(name, StringType()) for name in EVENT_FIELDS])
    events = spark.read.schema(schema).json(str(tmp_path / "jsonl" / "events"))
    assert events.count() == expected
    assert "date" in events.columns and "hour" in events.columns  # hive partitions found
    table = spark.read.parquet(str(tmp_path / "parquet" / "events"))
    assert table.count() == expected
    assert table.select("batch_id").distinct().count() == len(batches)
    engine.dispose()
