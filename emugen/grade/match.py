"""Matching: each truth record's fate in the consumer's output, decided by one DuckDB join.

Two modes (docs/DECISIONS.md, "Grading: matching modes"):
- lineage: the consumer carried `(batch_id, row_no)` (or the landing file name and line). Exact:
  it tells an original from its duplicate copy, and every kept or rejected row from any other.
- id: only the natural id (`event_id` / `company_id`) survived. Occurrence n of an id in the
  consumer's output (kept rows first, then rejected, each in file order) is matched to
  occurrence n in the truth. It cannot tell which of two exact copies was kept (it assumes the
  first), nor attribute a record whose id the defect removed: those are reported `unmatched`.
"""

from __future__ import annotations

import duckdb

DUPLICATES = ("quarantined", "dropped")

# Every truth row gets one status. Order matters: a row kept in silver has escaped, whatever
# else happened to it; a dropped duplicate copy is only "caught" when the user says dedupe drops.
STATUS = """
CASE
  WHEN pending THEN 'pending'
  WHEN unmatched THEN 'unmatched'
  WHEN defect IS NULL THEN CASE WHEN rej_n > 0 THEN 'false_alarm'
                                WHEN kept_n > 0 THEN 'kept' ELSE 'lost' END
  WHEN kept_n > 0 THEN 'escaped'
  WHEN rej_n > 0 THEN 'caught'
  WHEN defect = 'duplicate' AND {dropped} THEN 'caught'
  ELSE 'lost'
END
"""


def _lineage(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""
        CREATE OR REPLACE TABLE matched AS
        WITH k AS (SELECT batch_id, row_no, count(*) AS n FROM kept GROUP BY ALL),
             r AS (SELECT batch_id, row_no, count(*) AS n FROM rejected GROUP BY ALL)
        SELECT t.*, coalesce(k.n, 0) AS kept_n, coalesce(r.n, 0) AS rej_n, false AS unmatched
        FROM truth t LEFT JOIN k USING (batch_id, row_no) LEFT JOIN r USING (batch_id, row_no)
    """)
    con.execute("""
        CREATE OR REPLACE TABLE strays AS
        SELECT split_part(u.batch_id, '-', 1) AS stream, count(*) AS extra, 0 AS no_id
        FROM (SELECT batch_id, row_no FROM kept UNION ALL SELECT batch_id, row_no FROM rejected) u
        ANTI JOIN truth t USING (batch_id, row_no)
        GROUP BY ALL
    """)


def _by_id(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""
        CREATE OR REPLACE TABLE user_rows AS
        SELECT natural_id, stream, side,
               row_number() OVER (PARTITION BY natural_id ORDER BY side, ord) AS occurrence
        FROM (SELECT natural_id, stream, 0 AS side, ord FROM kept
              UNION ALL SELECT natural_id, stream, 1 AS side, ord FROM rejected)
        WHERE natural_id IS NOT NULL
    """)
    con.execute("""
        CREATE OR REPLACE TABLE matched AS
        WITH u AS (SELECT natural_id, occurrence, count(*) FILTER (WHERE side = 0) AS kept_n,
                          count(*) FILTER (WHERE side = 1) AS rej_n
                   FROM user_rows GROUP BY ALL)
        SELECT t.*, coalesce(u.kept_n, 0) AS kept_n, coalesce(u.rej_n, 0) AS rej_n,
               t.natural_id IS NULL AS unmatched
        FROM truth t LEFT JOIN u USING (natural_id, occurrence)
    """)
    # An id the truth knows, seen more often than the truth holds it: the consumer duplicated
    # it. An id the truth never had: an extra row. Rows without an id cannot be placed at all.
    con.execute("""
        CREATE OR REPLACE TABLE strays AS
        WITH ids AS (SELECT natural_id, any_value(stream) AS stream, max(occurrence) AS top
                     FROM truth WHERE natural_id IS NOT NULL GROUP BY ALL)
        SELECT coalesce(ids.stream, u.stream, 'unknown') AS stream,
               count(*) FILTER (WHERE ids.natural_id IS NULL) AS extra,
               0 AS no_id,
               count(*) FILTER (WHERE ids.natural_id IS NOT NULL) AS duplicated
        FROM user_rows u LEFT JOIN ids USING (natural_id)
        WHERE ids.natural_id IS NULL OR u.occurrence > ids.top
        GROUP BY ALL
        UNION ALL
        SELECT coalesce(stream, 'unknown'), 0, count(*), 0 FROM (
            SELECT stream FROM kept WHERE natural_id IS NULL
            UNION ALL SELECT stream FROM rejected WHERE natural_id IS NULL)
        GROUP BY ALL
    """)


def match(con: duckdb.DuckDBPyConnection, mode: str, duplicates: str,
          pending: bool = True) -> None:
    """Build `graded`: every truth row with kept_n, rej_n, pending and its status; and `strays`.

    Pending rule: per stream, a batch later than the last batch the consumer's output mentions
    (batch ids sort by seq) has not been reached yet; its records are pending, not misses.
    """
    (_lineage if mode == "lineage" else _by_id)(con)
    if mode == "lineage":
        con.execute("ALTER TABLE strays ADD COLUMN duplicated BIGINT DEFAULT 0")
        con.execute("""
            INSERT INTO strays SELECT stream, 0, 0, sum(kept_n + rej_n - 1)
            FROM matched WHERE kept_n + rej_n > 1 GROUP BY ALL
        """)
    reached = ("SELECT stream, max(batch_id) AS last FROM matched "
               "WHERE kept_n + rej_n > 0 GROUP BY ALL") if pending else (
        "SELECT stream, max(batch_id) AS last FROM matched GROUP BY ALL")
    dropped = "true" if duplicates == "dropped" else "false"
    con.execute(f"""
        CREATE OR REPLACE TABLE graded AS
        WITH reached AS ({reached}),
             placed AS (SELECT m.*, (reached.last IS NULL OR m.batch_id > reached.last) AS pending
                        FROM matched m LEFT JOIN reached USING (stream))
        SELECT *, {STATUS.format(dropped=dropped)} AS status FROM placed
    """)
