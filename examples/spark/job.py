"""A PySpark streaming consumer of emugen's Parquet landing zone: silver, quarantine, gold.

    python examples/spark/job.py LANDING_ROOT --out OUT [--once | --trigger-seconds 5] [--weaken]

One file-source stream reads `<root>/*/date=*/hour=*/*.parquet` (both streams, so companies reach
silver before the events that name them: the source takes files oldest first). `foreachBatch`
validates each record by contract.py, decides orphans and duplicates against what it already
kept, and publishes Parquet under OUT: silver/{companies,events}, quarantine (with `reason` and
`field`), gold/{company_window,region_window}. Every silver and quarantine row carries
`batch_id` and `row_no`, so `emugen grade` matches it to the truth exactly. See README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

sys.path.insert(0, str(Path(__file__).resolve().parent))
from contract import checked  # noqa: E402 - a sibling module of this script
from watermark import events_or_empty, lateness_horizon, watermark_gold  # noqa: E402

# The landing zone's Parquet columns (row_no is read as a long whether it was written 32- or
# 64-bit). Nothing else is set on the reader: the path and this schema are enough.
LANDING_SCHEMA = StructType(
    [
        StructField("batch_id", StringType()),
        StructField("row_no", LongType()),
        StructField("payload", StringType()),
        StructField("scheduled_at", TimestampType()),
    ]
)
QUARANTINE = ("batch_id", "row_no", "stream", "reason", "field", "payload")
SILVER = {
    "companies": (
        "company_id",
        "company_name",
        "region",
        "active",
        "onboarded_at",
        "drivers_count",
        "trucks_count",
        "batch_id",
        "row_no",
    ),
    "events": (
        "event_id",
        "company_id",
        "driver_id",
        "truck_id",
        "event_type",
        "event_timestamp",
        "lat",
        "lon",
        "batch_id",
        "row_no",
    ),
}


class JobError(Exception):
    """Raised when the job cannot run as asked; the message names the fix."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("landing", type=Path, help="the landing root (landing.format: parquet)")
    p.add_argument("--out", type=Path, required=True, help="where silver/quarantine/gold go")
    p.add_argument(
        "--once", action="store_true", help="process what has landed (availableNow), then exit"
    )
    p.add_argument(
        "--trigger-seconds",
        type=float,
        default=5.0,
        help="continuous mode: start a micro-batch this often (default 5)",
    )
    p.add_argument(
        "--max-files",
        type=int,
        default=2,
        help="maxFilesPerTrigger: landed files per micro-batch (default 2)",
    )
    p.add_argument(
        "--window-seconds",
        type=int,
        default=60,
        help="gold window length (emugen's emulated windows are 60 s)",
    )
    p.add_argument(
        "--manifest-wait",
        type=float,
        default=30.0,
        help="seconds to wait for a batch's manifest, written just after its file",
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        help="show Spark's own ERROR log (stack traces); by default a failure is "
        "one line naming its cause",
    )
    p.add_argument(
        "--weaken",
        action="store_true",
        help="drop the enum check: invalid region/event_type values reach silver",
    )
    p.add_argument(
        "--watermark-seconds",
        type=float,
        default=None,
        help="the streaming gold's watermark delay (default: the landing's lateness "
        "horizon from its manifests, else 120)",
    )
    p.add_argument(
        "--watermark-out",
        type=Path,
        default=None,
        help="where the watermarked gold goes (default OUT/gold/watermark)",
    )
    p.add_argument(
        "--streaming-gold-only",
        action="store_true",
        help="skip the gold recomputed in each micro-batch (gold/company_window, "
        "gold/region_window): write the watermarked gold only",
    )
    args = p.parse_args(argv)
    if args.watermark_seconds is not None and args.watermark_seconds < 0:
        p.error("--watermark-seconds must be 0 or more")
    if args.max_files < 1 or args.trigger_seconds <= 0 or args.window_seconds < 1:
        p.error("--max-files, --trigger-seconds and --window-seconds must be positive")
    if not args.landing.is_dir():
        p.error(
            f"landing root {str(args.landing)!r} is not a folder; point at emugen's "
            "landing.root (with landing.format: parquet)"
        )
    return args


def manifest_bounds(
    root: Path, stream: str, batch_id: str, wait: float
) -> tuple[datetime, datetime, datetime, str | None]:
    """The batch's interval from its manifest's spec (waiting for a manifest still being
    written), the earliest event time it may hold (the interval start less the declared
    `max_lateness`: late data is valid) and the field its contract version adds, if any.

    The boundary check needs the interval the batch covers, and only the manifest says it (a
    simulated clock's interval has nothing to do with the tick time in `scheduled_at`).
    """
    path = root / "_manifests" / stream / f"{batch_id}.json"
    deadline = time.monotonic() + wait
    while not path.exists():
        if time.monotonic() > deadline:
            raise JobError(
                f"no manifest {path} after {wait:g} s; is the landing zone complete? "
                "(raise --manifest-wait if the fleet is slow)"
            )
        time.sleep(0.2)
    doc = json.loads(path.read_text())
    spec = doc.get("spec", doc)
    if isinstance(spec, str):  # a spec kept as JSON text
        spec = json.loads(spec)
    start = datetime.fromisoformat(spec["interval_start"])
    arrival = spec.get("arrival") or {}
    late_ms = (arrival.get("late") or {}).get("max_lateness_ms", 0)
    drift = arrival.get("drift") or {}
    field = drift.get("field") if arrival.get("contract_version", 1) >= 2 else None
    return (
        start,
        datetime.fromisoformat(spec["interval_end"]),
        start - timedelta(milliseconds=late_ms),
        field,
    )


def stage(df: DataFrame, out: Path, table: str, epoch: int) -> None:
    """Write one micro-batch's part of a table into a staging folder outside the table."""
    staging = out / "_staging" / table / f"epoch={epoch:09d}"
    shutil.rmtree(staging, ignore_errors=True)
    df.coalesce(1).write.parquet(str(staging))


def publish(out: Path, tables: tuple[str, ...], epoch: int) -> None:
    """Rename the staged folders into place, one right after the other.

    Spark's writes take seconds; renames take microseconds. Staging every table first means a
    reader following the output (`emugen grade --follow`) never sees Spark's temporaries, nor
    an epoch's silver without its quarantine for longer than a rename (else, for seconds, the
    quarantined records of the batches it reached would look lost). A re-run epoch (restart from
    the checkpoint) replaces its earlier attempt.
    """
    name = f"epoch={epoch:09d}"
    for table in tables:
        (out / table).mkdir(parents=True, exist_ok=True)
        shutil.rmtree(out / table / name, ignore_errors=True)
    for table in tables:
        (out / "_staging" / table / name).rename(out / table / name)


def earlier(spark: SparkSession, out: Path, table: str, epoch: int, column: str) -> DataFrame:
    """The distinct `column` values of a table as kept by the epochs before this one."""
    path = out / table
    if not path.is_dir() or not any(path.glob("epoch=*")):
        return spark.createDataFrame([], f"{column} string")
    return spark.read.parquet(str(path)).where(F.col("epoch") < epoch).select(column).distinct()


def repeats(valid: DataFrame, key: str, held: DataFrame) -> DataFrame:
    """`valid` with `is_repeat`: its key is already held, or appeared earlier in this batch.

    Exact copies are quarantined as `duplicate`, never silently dropped, like emugen's silver.
    """
    first = Window.partitionBy(key).orderBy("batch_id", "row_no")
    return (
        valid.withColumn("_n", F.row_number().over(first))
        .join(held.withColumn("_held", F.lit(True)), key, "left")
        .withColumn("is_repeat", (F.col("_n") > 1) | F.col("_held").isNotNull())
        .drop("_n", "_held")
    )


def rejected(
    df: DataFrame, stream: str, reason: str | None = None, field: str | None = None
) -> DataFrame:
    """Quarantine rows: the contract's reason, or the given one (orphans and duplicates)."""
    return df.select(
        "batch_id",
        "row_no",
        F.lit(stream).alias("stream"),
        F.col("rejected.reason") if reason is None else F.lit(reason).alias("reason"),
        F.col("rejected.field") if field is None else F.lit(field).alias("field"),
        "payload",
    ).toDF(*QUARANTINE)


def refine(
    spark: SparkSession, rows: DataFrame, out: Path, epoch: int, weaken: bool
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Silver companies, silver events and quarantine for one micro-batch of raw rows."""
    companies = checked(rows.where("stream = 'companies'"), "companies", weaken).persist()
    events = checked(rows.where("stream = 'events'"), "events", weaken).persist()

    held = earlier(spark, out, "silver/companies", epoch, "company_id").persist()
    ok_companies = repeats(companies.where("rejected IS NULL"), "company_id", held)
    silver_companies = ok_companies.where("NOT is_repeat")
    # an event may name any company kept before, or one kept in this very micro-batch
    known = held.unionByName(silver_companies.select("company_id"))
    ok_events = events.where("rejected IS NULL")
    orphans = ok_events.join(known, "company_id", "left_anti")
    ok_events = repeats(
        ok_events.join(known, "company_id", "left_semi"),
        "event_id",
        earlier(spark, out, "silver/events", epoch, "event_id"),
    )

    quarantine = (
        rejected(companies.where("rejected IS NOT NULL"), "companies")
        .unionByName(
            rejected(ok_companies.where("is_repeat"), "companies", "duplicate", "company_id")
        )
        .unionByName(rejected(events.where("rejected IS NOT NULL"), "events"))
        .unionByName(rejected(orphans, "events", "orphan_reference", "company_id"))
        .unionByName(rejected(ok_events.where("is_repeat"), "events", "duplicate", "event_id"))
    )
    return (
        silver_companies.select(*SILVER["companies"]),
        ok_events.where("NOT is_repeat").select(*SILVER["events"]),
        quarantine,
    )


def window_of(column: str, seconds: int) -> F.Column:
    width = seconds * 1000
    return F.expr(f"unix_millis({column}) div {width} * {width}")


def build_gold(spark: SparkSession, out: Path, seconds: int, touched: list[int]) -> None:
    """Recompute, from all of silver, every gold window this micro-batch touched.

    Windows are partitions (`window_start_ms=…`) replaced by dynamic partition overwrite, so a
    window's row is a recomputation, never an increment that a re-run would count twice.
    """
    if not touched:
        return
    companies = spark.read.parquet(str(out / "silver/companies")).drop("epoch")
    events = (
        events_or_empty(spark, out / "silver/events")
        .withColumn("window_start_ms", window_of("event_timestamp", seconds))
        .where(F.col("window_start_ms").isin(touched))
    )
    count = lambda kind: F.count_if(F.col("event_type") == kind)  # noqa: E731
    per_company = events.groupBy("window_start_ms", "company_id").agg(
        F.count("*").alias("events"),
        count("start_driving").alias("start_driving"),
        count("stopped_driving").alias("stopped_driving"),
        count("delivered").alias("delivered"),
        F.countDistinct("driver_id").alias("active_drivers"),
    )
    onboarded = (
        companies.withColumn("window_start_ms", window_of("onboarded_at", seconds))
        .where(F.col("window_start_ms").isin(touched))
        .groupBy("window_start_ms", "region")
        .agg(F.count("*").alias("companies_onboarded"))
    )
    moved = (
        events.join(companies.select("company_id", "region"), "company_id")
        .groupBy("window_start_ms", "region")
        .agg(F.count("*").alias("events"), count("delivered").alias("deliveries"))
    )
    per_region = onboarded.join(moved, ["window_start_ms", "region"], "full").na.fill(
        0, ["companies_onboarded", "events", "deliveries"]
    )
    for table, df in (("gold/company_window", per_company), ("gold/region_window", per_region)):
        (
            df.withColumn("window_seconds", F.lit(seconds))
            .withColumn("window_start", F.timestamp_millis("window_start_ms"))
            .repartition("window_start_ms")
            .write.mode("overwrite")
            .partitionBy("window_start_ms")
            .parquet(str(out / table))
        )


def micro_batch(spark: SparkSession, args: argparse.Namespace):  # noqa: ANN201 - a callback
    """The foreachBatch callback: one landed slice in, silver/quarantine/gold out."""

    def handle(batch: DataFrame, epoch: int) -> None:
        started = time.monotonic()
        rows = (
            batch.select("batch_id", "row_no", "payload")
            .withColumn("stream", F.substring_index("batch_id", "-", 1))
            .persist()
        )
        landed = sorted(
            (r.batch_id, r.stream) for r in rows.select("batch_id", "stream").distinct().collect()
        )
        if not landed:
            return
        bounds = spark.createDataFrame(
            [(b, *manifest_bounds(args.landing, s, b, args.manifest_wait)) for b, s in landed],
            "batch_id string, interval_start timestamp, interval_end timestamp, "
            "earliest timestamp, drift_field string",
        )
        rows = rows.join(F.broadcast(bounds), "batch_id")
        companies, events, quarantine = refine(spark, rows, args.out, epoch, args.weaken)
        tables = {"silver/companies": companies, "silver/events": events, "quarantine": quarantine}
        if not any(s == "events" for _, s in landed):
            # one silver events file per landed events file, none for a companies-only
            # micro-batch: the watermark query then runs a micro-batch per landed events file
            del tables["silver/events"]
        for table, df in tables.items():
            stage(df, args.out, table, epoch)
        publish(args.out, tuple(tables), epoch)
        # wall times let a follower measure published -> graded (tests, README)
        print(
            f"{datetime.now():%H:%M:%S} epoch {epoch} published in "
            f"{time.monotonic() - started:.1f} s: {', '.join(b for b, _ in landed)}",
            flush=True,
        )
        if args.streaming_gold_only:
            return
        started = time.monotonic()
        touched = (
            events.select(window_of("event_timestamp", args.window_seconds).alias("w"))
            .unionByName(
                companies.select(window_of("onboarded_at", args.window_seconds).alias("w"))
            )
            .distinct()
            .collect()
        )
        build_gold(spark, args.out, args.window_seconds, sorted(r.w for r in touched))
        spark.catalog.clearCache()
        print(
            f"{datetime.now():%H:%M:%S} epoch {epoch} gold: {len(touched)} window(s) in "
            f"{time.monotonic() - started:.1f} s",
            flush=True,
        )

    return handle


def session(verbose: bool) -> SparkSession:
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("emugen-landing-consumer")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")  # 200 tiny tasks cost seconds
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .getOrCreate()
    )
    # A failed micro-batch is logged by Spark with Java and Python stack traces; main() prints
    # its cause in one line instead, unless asked for the full log.
    spark.sparkContext.setLogLevel("ERROR" if verbose else "FATAL")
    return spark


def streaming_gold(spark: SparkSession, args: argparse.Namespace):  # noqa: ANN201 - a writer
    """The watermarked gold query over published silver (watermark.py)."""
    delay = (
        lateness_horizon(args.landing) if args.watermark_seconds is None else args.watermark_seconds
    )
    out = args.watermark_out or args.out / "gold" / "watermark"
    print(f"{datetime.now():%H:%M:%S} watermarked gold: delay {delay:g} s -> {out}", flush=True)
    return watermark_gold(
        spark, args.out / "silver" / "events", out, delay, args.window_seconds, args.max_files
    )


def run(args: argparse.Namespace) -> None:
    spark = session(args.verbose)
    source = (
        spark.readStream.schema(LANDING_SCHEMA)
        .option("maxFilesPerTrigger", args.max_files)
        # `*` for the stream, and date=/hour= so `_manifests` is never matched
        .parquet(str(args.landing / "*" / "date=*" / "hour=*" / "*.parquet"))
    )
    writer = source.writeStream.foreachBatch(micro_batch(spark, args)).option(
        "checkpointLocation", str(args.out / "_checkpoint")
    )
    if args.once:  # silver first, then the streaming gold over all of it
        writer.trigger(availableNow=True).start().awaitTermination()
        streaming_gold(spark, args).trigger(availableNow=True).start().awaitTermination()
        return
    every = f"{args.trigger_seconds} seconds"
    queries = [writer.trigger(processingTime=every).start()]
    (args.out / "silver" / "events").mkdir(parents=True, exist_ok=True)
    queries.append(streaming_gold(spark, args).trigger(processingTime=every).start())
    stopping: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda number, _frame: stopping.append(number))
    while all(q.isActive for q in queries) and not stopping:
        queries[0].awaitTermination(1)
    # Let the micro-batch in flight finish, so gold is not left behind silver until a restart.
    # (Stopping mid-batch is safe anyway: the epoch is not committed, so a restart re-runs it.)
    deadline = time.monotonic() + 120
    for query in queries:
        while query.isActive and query.status["isTriggerActive"] and time.monotonic() < deadline:
            time.sleep(0.2)
        query.stop()
    for query in queries:
        if query.exception() is not None:
            raise query.exception()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except JobError as exc:
        print(f"job.py: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a failed query: one line (--verbose: Spark's log)
        text = str(exc)
        if "JobError:" in text:  # raised inside foreachBatch, wrapped by Py4J and Spark
            cause = text.split("JobError:")[-1].splitlines()[0].strip()
            print(f"job.py: the streaming query stopped: {cause}", file=sys.stderr)
            return 2
        cause = text.splitlines()[0] if text else type(exc).__name__
        print(
            f"job.py: the streaming query failed: {cause} (--verbose shows Spark's log)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
