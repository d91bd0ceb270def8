"""Answer-grading benchmark: `emugen grade --gold` on a million events with arrival conditions
(late, redelivered, a delayed batch) and defects, beside a hand-written DuckDB GROUP BY +
FULL OUTER JOIN of the same files, in the same run."""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path

import duckdb

from emugen.grade.answer.run import GoldJob, run_gold
from emugen.grade.inputs import Source
from emugen.lab import best_of, peak_rss_mb

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
INTERVAL_MS = 360_000  # each batch spans 6 minutes: 6 one-minute windows

# every field is a hash of the record's ordinal: a copy (4 % of the records of every other
# batch, of a valid record) is the record one batch before it, byte for byte
FIXTURE = f"""
CREATE OR REPLACE MACRO late_ms(i) AS CASE WHEN hash(i * 19) % 100 < 5
                                     THEN hash(i * 23) % 120000 + 1 ELSE 0 END;
CREATE OR REPLACE MACRO defective(i) AS hash(i * 29) % 100 < 5;
CREATE OR REPLACE TABLE fx AS
WITH ids AS (SELECT range AS i FROM range({{records}})),
src AS (SELECT i, CASE WHEN i // {{batch}} % 2 = 1 AND hash(i * 31) % 100 < 4
                            AND NOT defective(i - {{batch}}) THEN i - {{batch}} END AS copy_of
        FROM ids)
SELECT i, coalesce(copy_of, i) AS s, copy_of IS NOT NULL AS is_copy,
       'events-' || lpad((i // {{batch}} + 1)::VARCHAR, 9, '0') AS batch_id,
       (i % {{batch}})::BIGINT AS row_no
FROM src;
CREATE OR REPLACE TABLE truth AS
SELECT batch_id, 'events' AS stream, row_no, 'e' || s AS natural_id,
       CASE WHEN NOT is_copy AND defective(i) THEN 'invalid_enum' END AS defect,
       NULL::VARCHAR AS field, NULL::VARCHAR AS original, NULL::VARCHAR AS injected,
       NULL::VARCHAR AS expected_reason,
       '{{"event_id":"e' || s || '","company_id":"c' || hash(s) % 1000 ||
       '","driver_id":"d' || hash(s * 7) % 5000 || '","event_type":"' ||
       CASE WHEN NOT is_copy AND defective(i) THEN 'teleported'
            ELSE ['start_driving', 'stopped_driving', 'delivered'][(hash(s * 13) % 3 + 1)::BIGINT]
       END ||
       '","event_timestamp":"' ||
       strftime(epoch_ms(({START_MS} + (s // {{batch}}) * {INTERVAL_MS}
                + hash(s * 17) % {INTERVAL_MS} - late_ms(s))::BIGINT), '%Y-%m-%dT%H:%M:%S.%gZ')
       || '"}}' AS payload,
       1 + is_copy::INT AS occurrence
FROM fx;
CREATE OR REPLACE TABLE arrivals AS
SELECT batch_id, row_no, CASE WHEN is_copy THEN 'redelivered' ELSE 'late' END AS condition,
       late_ms(s) AS lateness_ms, NULL::VARCHAR AS released_after_batch_id
FROM fx WHERE is_copy OR (late_ms(i) > 0 AND NOT defective(i))
UNION ALL SELECT 'events-000000003', NULL, 'delayed', NULL, 'events-000000005';
"""

# a consumer's gold: the naive one checks each record but never de-duplicates across batches
# (copies counted twice); the correct one drops the copies too
CONSUMER = """
COPY (
  WITH e AS (
    SELECT json_extract_string(payload, '$.company_id') AS company_id,
           json_extract_string(payload, '$.driver_id') AS driver_id,
           json_extract_string(payload, '$.event_type') AS event_type,
           time_bucket(INTERVAL 1 MINUTE,
                       json_extract_string(payload, '$.event_timestamp')::TIMESTAMPTZ) AS ws
    FROM truth WHERE defect IS NULL {dedupe})
  SELECT 60 AS window_seconds, company_id, ws AS window_start, count(*) AS events,
         count(*) FILTER (WHERE event_type = 'start_driving') AS start_driving,
         count(*) FILTER (WHERE event_type = 'stopped_driving') AS stopped_driving,
         count(*) FILTER (WHERE event_type = 'delivered') AS delivered,
         count(DISTINCT driver_id) AS active_drivers
  FROM e GROUP BY ALL) TO '{gold}' (FORMAT parquet)
"""


def make_fixture(records: int, folder: Path) -> dict[str, str]:
    """The truth, the arrival ledger, a naive and a correct consumer's gold, as Parquet."""
    paths = {
        name: str(folder / f"{name}.parquet") for name in ("truth", "arrivals", "gold", "correct")
    }
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        batch = max(records // 10, 100)  # ten batches, as in the landing zone
        sql = FIXTURE.replace("{records}", str(records)).replace("{batch}", str(batch))
        for statement in sql.split(";"):
            if statement.strip():
                con.execute(statement)
        con.execute(f"COPY truth TO '{paths['truth']}' (FORMAT parquet)")
        con.execute(f"COPY arrivals TO '{paths['arrivals']}' (FORMAT parquet)")
        con.execute(CONSUMER.format(gold=paths["gold"], dedupe=""))
        con.execute(CONSUMER.format(gold=paths["correct"], dedupe="AND occurrence = 1"))
    finally:
        con.close()
    return paths


# the hand-written grader: expected gold by one GROUP BY, joined with the consumer's gold
HAND = """
WITH e AS (
  SELECT json_extract_string(payload, '$.company_id') AS company_id,
         json_extract_string(payload, '$.driver_id') AS driver_id,
         json_extract_string(payload, '$.event_type') AS event_type,
         epoch_ms(json_extract_string(payload, '$.event_timestamp')::TIMESTAMPTZ)
           // 60000 * 60000 AS w
  FROM read_parquet('{truth}') WHERE defect IS NULL),
x AS (SELECT w, company_id, count(*) AS events,
             count(*) FILTER (WHERE event_type = 'start_driving') AS start_driving,
             count(*) FILTER (WHERE event_type = 'stopped_driving') AS stopped_driving,
             count(*) FILTER (WHERE event_type = 'delivered') AS delivered,
             count(DISTINCT driver_id) AS active_drivers FROM e GROUP BY ALL),
g AS (SELECT epoch_ms(window_start) AS w, * EXCLUDE (window_start) FROM read_parquet('{gold}'))
SELECT count(*), count(*) FILTER (WHERE x.events IS DISTINCT FROM g.events
    OR x.start_driving IS DISTINCT FROM g.start_driving
    OR x.stopped_driving IS DISTINCT FROM g.stopped_driving
    OR x.delivered IS DISTINCT FROM g.delivered
    OR x.active_drivers IS DISTINCT FROM g.active_drivers)
FROM x FULL OUTER JOIN g USING (w, company_id)
"""


def hand_join(paths: dict[str, str]) -> list[tuple]:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        return con.execute(HAND.format(**paths)).fetchall()
    finally:
        con.close()


def bench_grade_gold(records: int = 1_000_000, repeat: int = 3) -> dict:
    """`grade --gold` (exact, explanations included) vs the bare GROUP BY + FULL OUTER JOIN,
    for a correct consumer's gold and for a naive one's."""
    with tempfile.TemporaryDirectory(prefix="emugen-bench-gold-") as tmp:
        paths = make_fixture(records, Path(tmp))
        out: dict = {"records": records}
        for name, gold in (("correct", paths["correct"]), ("naive", paths["gold"])):
            job = GoldJob(
                Source("gold", gold), truth_path=paths["truth"], arrivals_path=paths["arrivals"]
            )
            # alternated, so that a busy neighbour slows both sides alike
            grade_s = join_s = float("inf")
            for _ in range(repeat):
                took, result = best_of(1, partial(run_gold, job))
                grade_s = min(grade_s, took)
                took, joined = best_of(1, partial(hand_join, {**paths, "gold": gold}))
                join_s = min(join_s, took)
            out[name] = {
                "grade_s": grade_s,
                "join_s": join_s,
                "ratio": grade_s / join_s,
                "cells": result["cells"],
                "wrong": result["wrong"],
                "by_cause": {k: v for k, v in result["by_cause"].items() if v},
                "join_rows": joined[0][0],
            }
        out["peak_rss_mb"] = peak_rss_mb()
        return out


def format_grade_gold(r: dict) -> str:
    lines = [
        f"grade --gold: {r['records']:,} events (5 % late, 2 % redelivered, a delayed "
        "batch, 5 % defects), policy exact, best of runs"
    ]
    for name in ("correct", "naive"):
        m = r[name]
        causes = ", ".join(f"{k} {v:,}" for k, v in m["by_cause"].items()) or "none"
        lines.append(
            f"  {name:<7} consumer: emugen grade --gold {m['grade_s']:6.2f} s   hand-written "
            f"GROUP BY + FULL OUTER JOIN {m['join_s']:5.2f} s   -> {m['ratio']:.2f}x   "
            f"({m['cells']:,} cells, {m['wrong']:,} wrong, explained: {causes})"
        )
    lines.append(f"  target: <= 1.5x the join; peak RSS {r['peak_rss_mb']:.0f} MB")
    return "\n".join(lines)
