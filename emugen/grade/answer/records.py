"""The landed records as the grader sees them: each one's key, window, truth and arrival.

From `truth_detail` (the grader's truth view) and the arrival ledger this builds, in DuckDB:
`files` (each landed file's release order `k` per stream, and the stream's progress before it)
and `rec` (one row per landed record with its fields parsed, `valid`, `copy`, `late`,
`delayed`, `released`). Set-based SQL throughout: no Python loop touches a record.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
from sqlalchemy import Engine, select

from emugen.db.ledger import LEDGER_COLUMNS, ArrivalEntry
from emugen.errors import GradeInputError

LEDGER_TYPES = {"row_no": "BIGINT", "entry": "BIGINT", "lateness_ms": "BIGINT",
                "original_row_no": "BIGINT"}
EMPTY_LEDGER = ("SELECT NULL::VARCHAR AS batch_id, NULL::BIGINT AS row_no, "
                "NULL::VARCHAR AS condition, NULL::BIGINT AS lateness_ms, "
                "NULL::VARCHAR AS released_after_batch_id LIMIT 0")


def load_ledger(con: duckdb.DuckDBPyConnection, engine: Engine | None,
                path: str | None) -> None:
    """The view `ledger` from an `emugen export arrivals` file, else the store, else empty."""
    if path is not None:
        from emugen.grade.inputs import reader_sql

        con.execute(f"CREATE OR REPLACE VIEW ledger_file AS SELECT * FROM "
                    f"{reader_sql(con, path, 'arrivals')}")
        have = {d[0].lower() for d in con.execute("SELECT * FROM ledger_file LIMIT 0").description}
        missing = [c for c in ("batch_id", "row_no", "condition") if c not in have]
        if missing:
            raise GradeInputError(f"arrivals {path}: no column {', '.join(missing)}; write it "
                                  "with `emugen export arrivals --out PATH`")
        cols = ", ".join(
            f"{c}::{LEDGER_TYPES.get(c, 'VARCHAR')} AS {c}" if c in have
            else f"NULL::{LEDGER_TYPES.get(c, 'VARCHAR')} AS {c}"
            for c in ("batch_id", "row_no", "condition", "lateness_ms", "released_after_batch_id"))
        con.execute(f"CREATE OR REPLACE TABLE ledger AS SELECT {cols} FROM ledger_file")
        return
    if engine is None:
        con.execute(f"CREATE OR REPLACE TABLE ledger AS {EMPTY_LEDGER}")
        return
    columns = [getattr(ArrivalEntry, c) for c in LEDGER_COLUMNS]
    with engine.connect() as conn:
        rows = conn.execute(select(*columns)).all()
    table = pa.table({c: pa.array([r[i] for r in rows]) for i, c in enumerate(LEDGER_COLUMNS)})
    con.register("ledger_arrow", table)
    con.execute("CREATE OR REPLACE TABLE ledger AS SELECT batch_id::VARCHAR AS batch_id, "
                "row_no::BIGINT AS row_no, condition::VARCHAR AS condition, "
                "lateness_ms::BIGINT AS lateness_ms, released_after_batch_id::VARCHAR "
                "AS released_after_batch_id FROM ledger_arrow"
                if rows else f"CREATE OR REPLACE TABLE ledger AS {EMPTY_LEDGER}")
    con.unregister("ledger_arrow")


# one parse per payload: every field the two gold tables need, as a list
_FIELDS = ("company_id", "driver_id", "event_type", "event_timestamp", "region", "onboarded_at")
PARSED = f"""
CREATE OR REPLACE TABLE parsed AS
SELECT batch_id, row_no, stream, natural_id, defect IS NULL AS valid,
       json_extract_string(CASE WHEN json_valid(payload) THEN payload END,
                           [{', '.join(repr('$.' + f) for f in _FIELDS)}]) AS f
FROM truth_detail
"""

FILES = """
CREATE OR REPLACE TABLE files AS
WITH landed AS (SELECT DISTINCT stream, batch_id FROM parsed),
waits AS (SELECT batch_id, any_value(released_after_batch_id) AS after FROM ledger
          WHERE condition = 'delayed' GROUP BY batch_id),
ordered AS (
  SELECT l.stream, l.batch_id, w.after IS NOT NULL AS delayed,
         -- a delayed batch is released only once the batch it waits for has landed
         w.after IS NULL OR w.after IN (SELECT batch_id FROM landed) AS released,
         row_number() OVER (PARTITION BY l.stream ORDER BY coalesce(w.after, l.batch_id),
                            w.after IS NOT NULL, l.batch_id) - 1 AS k
  FROM landed l LEFT JOIN waits w USING (batch_id))
SELECT * FROM ordered
"""

REC = """
CREATE OR REPLACE TABLE rec AS
WITH base AS (
  SELECT p.batch_id, p.row_no, p.stream, p.natural_id AS record_id, p.valid,
         p.f[1] AS company_id, p.f[2] AS driver_id, p.f[3] AS event_type,
         CASE WHEN p.stream = 'events' THEN epoch_ms(try_cast(p.f[4] AS TIMESTAMPTZ))
              ELSE epoch_ms(try_cast(p.f[6] AS TIMESTAMPTZ)) END AS event_ms,
         p.f[5] AS own_region, f.k, f.delayed, f.released,
         l.condition = 'late' AS ledger_late, l.condition = 'redelivered' AS ledger_copy
  FROM parsed p JOIN files f USING (stream, batch_id)
  LEFT JOIN ledger l ON l.batch_id = p.batch_id AND l.row_no = p.row_no
       AND l.condition IN ('late', 'redelivered'))
SELECT *, event_ms // {width} * {width} AS w,
       valid AND row_number() OVER (PARTITION BY stream, record_id, valid
           ORDER BY coalesce(ledger_copy, false), k, batch_id, row_no) > 1
           AND record_id IS NOT NULL AS copy
FROM base
"""

# per stream and file: the largest valid event time of the files released before it (k - 1)
# and before the one before it (k - 2): the watermark Spark filters and evicts with
PROGRESS = """
CREATE OR REPLACE TABLE progress AS
WITH per_file AS (
  SELECT f.stream, f.k, max(r.event_ms) FILTER (WHERE r.valid) AS top
  FROM files f LEFT JOIN rec r USING (stream, k) GROUP BY f.stream, f.k)
SELECT stream, k,
  max(top) OVER (PARTITION BY stream ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    AS before_1,
  max(top) OVER (PARTITION BY stream ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND 2 PRECEDING)
    AS before_2,
  max(top) OVER (PARTITION BY stream) AS final
FROM per_file
"""


def build_records(con: duckdb.DuckDBPyConnection, width_ms: int) -> None:
    """`files`, `rec` and `progress` from `truth_detail` and `ledger` (see the module doc)."""
    con.execute(PARSED)
    con.execute(FILES)
    con.execute(REC.format(width=int(width_ms)))
    con.execute(PROGRESS)
