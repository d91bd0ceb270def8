"""The landed records as the grader sees them: each one's key, window, truth and arrival.

From `truth_detail` (the grader's truth view) and the arrival ledger this builds, in DuckDB:
`files` (each landed file's release order `k` per stream), `copies` (the valid records whose
id an earlier one has), `parsed` (one row per landed record with its fields, event time, file
and marks: the only table of records, parsed and written once) and `progress` (the stream's
newest event before each file). Set-based SQL throughout: no Python loop touches a record.

Which record of an id is the one counted: under `exact` the ledger's original (each counts once
in its event-time window either way); under a watermark or a lookback the first to arrive, in
release order, since that is the one a streaming or incremental consumer saw and kept: a copy
released before its delayed original is counted, the original is the duplicate.
"""

from __future__ import annotations

import duckdb

FILES = """
CREATE OR REPLACE TABLE files AS
WITH landed AS (SELECT DISTINCT stream, batch_id FROM truth_detail),
waits AS (SELECT batch_id, any_value(released_after_batch_id) AS after FROM ledger
          WHERE condition = 'delayed' GROUP BY batch_id),
ordered AS (
  SELECT l.stream, l.batch_id, w.after IS NOT NULL AS delayed,
         -- a delayed batch is released only once the batch it waits for has landed
         w.after IS NULL OR w.after IN (SELECT batch_id FROM landed) AS released,
         row_number() OVER (PARTITION BY l.stream ORDER BY coalesce(w.after, l.batch_id),
                            w.after IS NOT NULL, l.batch_id) - 1 AS k
  FROM landed l LEFT JOIN waits w USING (batch_id))
-- fid numbers every file from 1: the index of its entry in a list of per-file values, read
-- per record without a join
SELECT *, row_number() OVER (ORDER BY stream, k)::INTEGER AS fid FROM ordered
"""

# the valid records whose id is already taken: a copy is every one after the first in the
# order given (the ids seen twice first, then a window over those few ids only). The ids seen
# twice are the ones the truth numbers past occurrence 1 (a small scan), else, when the
# numbers are not stored, the hashes one aggregate finds twice (a collision only adds an id)
COPIES = """
CREATE OR REPLACE TABLE copies AS
WITH t AS (SELECT stream, batch_id, row_no, natural_id AS record_id FROM truth_detail
           WHERE (defect IS NULL OR defect = 'redelivered') AND natural_id IS NOT NULL),
{twice},
ranked AS (
  SELECT p.batch_id, p.row_no, row_number() OVER (PARTITION BY p.stream, p.record_id
           ORDER BY {order}, p.batch_id, p.row_no) AS n
  FROM t p SEMI JOIN twice ON twice.stream = p.stream AND twice.h = hash(p.record_id)
  JOIN files f USING (stream, batch_id)
  LEFT JOIN ledger l ON l.batch_id = p.batch_id AND l.row_no = p.row_no
       AND l.condition = 'redelivered')
SELECT batch_id, row_no FROM ranked WHERE n > 1
"""
NUMBERED = """twice AS (SELECT DISTINCT stream, hash(natural_id) AS h FROM truth_detail
          WHERE occurrence IS DISTINCT FROM 1 AND natural_id IS NOT NULL)"""
HASHED = "twice AS (SELECT stream, hash(record_id) AS h FROM t GROUP BY ALL HAVING count(*) > 1)"
# the ledger's original first, else release order; or release order first (the first arrival),
# the ledger's original first within one file
ORIGINAL_FIRST = "l.condition IS NOT NULL, f.k"
ARRIVAL_FIRST = "f.k, l.condition IS NOT NULL"

# one parse per payload, into the fields both gold tables need, the event time as epoch ms,
# with the record's file (release order k), copy and ledger-late marks: the one table of
# records every later step reads
PARSED = """
CREATE OR REPLACE TABLE parsed AS
WITH f AS (
  SELECT batch_id, row_no, stream, natural_id,
         -- a redelivered copy is valid data (the truth names it so it is not counted twice)
         (defect IS NULL OR defect = 'redelivered') AS valid,
         CASE WHEN stream = 'events' THEN {events} ELSE {companies} END AS f
  FROM truth_detail)
SELECT f.batch_id, f.row_no, f.stream, natural_id AS record_id, valid, f[1] AS company_id,
       CASE WHEN f.stream = 'events' THEN f[2] END AS driver_id,
       CASE WHEN f.stream = 'events' THEN f[3] END AS event_type,
       CASE WHEN f.stream = 'companies' THEN f[2] END AS own_region,
       epoch_ms(try_cast(CASE WHEN f.stream = 'events' THEN f[4] ELSE f[3] END AS TIMESTAMPTZ))
         AS event_ms,
       fl.k, fl.fid, fl.delayed, fl.released, c.batch_id IS NOT NULL AS copy,
       l.batch_id IS NOT NULL AS ledger_late
FROM f JOIN files fl USING (stream, batch_id)
LEFT JOIN copies c ON c.batch_id = f.batch_id AND c.row_no = f.row_no
LEFT JOIN ledger l ON l.batch_id = f.batch_id AND l.row_no = f.row_no AND l.condition = 'late'
"""
EVENT_FIELDS = "['$.company_id', '$.driver_id', '$.event_type', '$.event_timestamp']"
COMPANY_FIELDS = "['$.company_id', '$.region', '$.onboarded_at']"


def parsed_sql(safe: bool) -> str:
    """PARSED with its JSON paths: `safe` tries every payload (a malformed one gives NULL);
    else only the defects' (a valid record's payload parses, and an unguarded extract is
    the faster)."""

    def extract(paths: str) -> str:
        guarded = f"try(json_extract_string(payload, {paths}))"
        if safe:
            return guarded
        return f"CASE WHEN valid THEN json_extract_string(payload, {paths}) ELSE {guarded} END"

    return PARSED.format(events=extract(EVENT_FIELDS), companies=extract(COMPANY_FIELDS))


# per stream and file: the largest valid event time of the files released before it (k - 1)
# and before the one before it (k - 2): the watermark Spark filters and evicts with
PROGRESS = """
CREATE OR REPLACE TABLE progress AS
WITH per_file AS (
  SELECT f.stream, f.k, f.fid, f.batch_id, f.delayed, f.released, t.top
  FROM files f LEFT JOIN (SELECT batch_id, max(event_ms) FILTER (WHERE valid) AS top
                          FROM parsed GROUP BY batch_id) t USING (batch_id))
SELECT stream, k, fid, batch_id, delayed, released,
  max(top) OVER (PARTITION BY stream ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    AS before_1,
  max(top) OVER (PARTITION BY stream ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND 2 PRECEDING)
    AS before_2
FROM per_file
"""


def numbered(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the truth stores each record's occurrence number (a table loaded from the
    store, or a file written by `emugen export truth`), not numbers them on every read."""
    view = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'truth_detail'").fetchall()
    return not view or "row_number()" not in view[0][0].lower()


def build_records(con: duckdb.DuckDBPyConnection, first_arrival: bool = False) -> None:
    """`files`, `copies`, `parsed` and `progress` from `truth_detail` and `ledger`; with
    `first_arrival` the first copy of an id in release order counts, else the ledger's
    original."""
    order = ARRIVAL_FIRST if first_arrival else ORIGINAL_FIRST
    con.execute(FILES)
    twice = NUMBERED if numbered(con) else HASHED
    con.execute(COPIES.replace("{twice}", twice).replace("{order}", order))
    try:
        con.execute(parsed_sql(safe=False))
    except duckdb.Error:  # a valid record whose payload is not JSON: parse every one guarded
        con.execute(parsed_sql(safe=True))
    con.execute(PROGRESS)
