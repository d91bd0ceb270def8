"""The landed records as the grader sees them: each one's key, window, truth and arrival.

From `truth_detail` (the grader's truth view) and the arrival ledger this builds, in DuckDB:
`parsed` (one row per landed record with its fields and event time), `files` (each landed
file's release order `k` per stream), `progress` (the stream's newest event before each file)
and `copies` (the valid records whose id an earlier one has). Set-based SQL throughout: no
Python loop touches a record.
"""

from __future__ import annotations

import duckdb

# one parse per payload, into the fields both gold tables need; the event time as epoch ms
PARSED = """
CREATE OR REPLACE TABLE parsed AS
WITH f AS (
  SELECT batch_id, row_no, stream, natural_id,
         -- a redelivered copy is valid data (the truth names it so it is not counted twice)
         (defect IS NULL OR defect = 'redelivered') AS valid,
         CASE WHEN stream = 'events' THEN try(json_extract_string(payload,
                ['$.company_id', '$.driver_id', '$.event_type', '$.event_timestamp']))
              ELSE try(json_extract_string(payload, ['$.company_id', '$.region',
                                                     '$.onboarded_at'])) END AS f
  FROM truth_detail)
SELECT batch_id, row_no, stream, natural_id AS record_id, valid, f[1] AS company_id,
       CASE WHEN stream = 'events' THEN f[2] END AS driver_id,
       CASE WHEN stream = 'events' THEN f[3] END AS event_type,
       CASE WHEN stream = 'companies' THEN f[2] END AS own_region,
       epoch_ms(try_cast(CASE WHEN stream = 'events' THEN f[4] ELSE f[3] END AS TIMESTAMPTZ))
         AS event_ms
FROM f
"""

FILES = """
CREATE OR REPLACE TABLE files AS
WITH landed AS (SELECT DISTINCT stream, batch_id FROM parsed),
waits AS (SELECT batch_id, any_value(released_after_batch_id) AS after FROM ledger
          WHERE condition = 'delayed' GROUP BY batch_id)
SELECT l.stream, l.batch_id, w.after IS NOT NULL AS delayed,
       -- a delayed batch is released only once the batch it waits for has landed
       w.after IS NULL OR w.after IN (SELECT batch_id FROM landed) AS released,
       row_number() OVER (PARTITION BY l.stream ORDER BY coalesce(w.after, l.batch_id),
                          w.after IS NOT NULL, l.batch_id) - 1 AS k
FROM landed l LEFT JOIN waits w USING (batch_id)
"""

# per stream and file: the largest valid event time of the files released before it (k - 1)
# and before the one before it (k - 2): the watermark Spark filters and evicts with
PROGRESS = """
CREATE OR REPLACE TABLE progress AS
WITH per_file AS (
  SELECT f.stream, f.k, f.batch_id, f.delayed, f.released, t.top
  FROM files f LEFT JOIN (SELECT batch_id, max(event_ms) FILTER (WHERE valid) AS top
                          FROM parsed GROUP BY batch_id) t USING (batch_id))
SELECT stream, k, batch_id, delayed, released,
  max(top) OVER (PARTITION BY stream ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    AS before_1,
  max(top) OVER (PARTITION BY stream ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND 2 PRECEDING)
    AS before_2
FROM per_file
"""

# the valid records whose id is already taken: a copy is every one after the first, in release
# order, a copy the ledger names always after its original (one hash aggregate, then a window
# over those few ids only)
COPIES = """
CREATE OR REPLACE TABLE copies AS
WITH twice AS (SELECT stream, record_id FROM parsed WHERE valid AND record_id IS NOT NULL
               GROUP BY ALL HAVING count(*) > 1),
ranked AS (
  SELECT p.batch_id, p.row_no, row_number() OVER (PARTITION BY p.stream, p.record_id
           ORDER BY l.condition IS NOT NULL, f.k, p.batch_id, p.row_no) AS n
  FROM parsed p SEMI JOIN twice USING (stream, record_id)
  JOIN files f USING (stream, batch_id)
  LEFT JOIN ledger l ON l.batch_id = p.batch_id AND l.row_no = p.row_no
       AND l.condition = 'redelivered'
  WHERE p.valid)
SELECT batch_id, row_no FROM ranked WHERE n > 1
"""


def build_records(con: duckdb.DuckDBPyConnection) -> None:
    """`parsed`, `files`, `progress` and `copies` from `truth_detail` and `ledger`."""
    for statement in (PARSED, FILES, PROGRESS, COPIES):
        con.execute(statement)
