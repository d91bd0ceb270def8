"""The streaming gold: a `withWatermark` windowed aggregation of silver events, append mode.

job.py publishes one silver events file per landed events file (none for a companies-only
micro-batch), so with `maxFilesPerTrigger 1` this query runs one micro-batch per landed events
file, in the order they were released: what `emugen grade --policy watermark=D --trigger
per-batch` models. A window is written once, when the watermark (the newest event time seen
less the delay) passes its end; a record whose window had already closed is dropped, as
Spark drops late data. The columns are `emugen export gold --stream events`'s.
"""

from __future__ import annotations

import json
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import DataStreamWriter
from pyspark.sql.types import (
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

SILVER_EVENTS_SCHEMA = StructType(
    [
        *(
            StructField(name, StringType())
            for name in ("event_id", "company_id", "driver_id", "truck_id", "event_type")
        ),
        StructField("event_timestamp", TimestampType()),
        StructField("lat", DoubleType()),
        StructField("lon", DoubleType()),
        StructField("batch_id", StringType()),
        StructField("row_no", LongType()),
    ]
)
FALLBACK_DELAY_S = 120.0  # two emulated windows, when no manifest says more


def lateness_horizon(landing: Path) -> float:
    """A safe watermark delay in seconds from the events manifests: the declared
    `max_lateness`, plus the batch intervals a delayed file may land behind (`max_delay`,
    and one more for the file released just before it); FALLBACK_DELAY_S without any."""
    horizon = 0.0
    for path in (landing / "_manifests" / "events").glob("*.json"):
        spec = json.loads(path.read_text()).get("spec") or {}
        arrival = spec.get("arrival") or {}
        late_s = (arrival.get("late") or {}).get("max_lateness_ms", 0) / 1000
        delay = (arrival.get("delayed") or {}).get("max_delay", 0)
        interval = _seconds(spec["interval_end"]) - _seconds(spec["interval_start"])
        horizon = max(horizon, late_s + (delay + 1) * interval if (late_s or delay) else 0.0)
    return horizon or FALLBACK_DELAY_S


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()


def events_or_empty(spark: SparkSession, folder: Path) -> DataFrame:
    """Silver events as published so far (an empty table before the first events file)."""
    if folder.is_dir() and any(folder.glob("epoch=*")):
        return spark.read.parquet(str(folder)).drop("epoch")
    return spark.createDataFrame([], SILVER_EVENTS_SCHEMA)


def watermark_gold(
    spark: SparkSession,
    silver_events: Path,
    out: Path,
    delay_s: float,
    window_s: int,
    max_files: int,
) -> DataStreamWriter:
    """The append-mode writer of per company per window gold, watermarked by `delay_s`."""
    source = (
        spark.readStream.schema(SILVER_EVENTS_SCHEMA)
        .option("maxFilesPerTrigger", max_files)
        .parquet(str(silver_events / "epoch=*" / "*.parquet"))
    )
    count = lambda kind: F.count_if(F.col("event_type") == kind)  # noqa: E731
    gold = (
        source.withWatermark("event_timestamp", f"{round(delay_s * 1000)} milliseconds")
        .groupBy(F.window("event_timestamp", f"{window_s} seconds"), "company_id")
        .agg(
            F.count("*").alias("events"),
            count("start_driving").alias("start_driving"),
            count("stopped_driving").alias("stopped_driving"),
            count("delivered").alias("delivered"),
            # distinct counts are not supported in a streaming aggregation
            F.size(F.collect_set("driver_id")).alias("active_drivers"),
        )
        .select(
            F.lit(window_s).alias("window_seconds"),
            "company_id",
            F.expr("unix_millis(window.start)").alias("window_start_ms"),
            F.col("window.start").alias("window_start"),
            "events",
            "start_driving",
            "stopped_driving",
            "delivered",
            "active_drivers",
        )
    )
    return (
        gold.coalesce(1)
        .writeStream.outputMode("append")
        .format("parquet")
        .option("path", str(out))
        .option("checkpointLocation", str(out / "_checkpoint"))
    )
