"""Matching: each truth record's fate in the consumer's output, decided by DuckDB joins.

Two modes (docs/DECISIONS.md, "Grading: matching modes"):
- lineage: the consumer carried `(batch_id, row_no)` (or the landing file name and line). Exact:
  it tells an original from its duplicate copy, and every kept or rejected row from any other.
- id: only the natural id (`event_id` / `company_id`) survived. Occurrence n of an id in the
  consumer's output (kept rows first, then rejected, each in file order) is matched to
  occurrence n in the truth. It cannot tell which of two exact copies was kept (it assumes the
  first), nor attribute a record whose id the defect removed: those are reported `unmatched`.

No join is materialised row by row: each is aggregated straight into `tally0`, one row
per (stream, batch, defect, fate flags), from which every figure follows; each group also
carries its first row numbers, so examples read back only those records.
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
  WHEN defect IS NULL THEN CASE WHEN rejected AND arrival = 'late' THEN 'rejected_late'
                                WHEN rejected AND arrival = 'drift' THEN 'rejected_drift'
                                WHEN rejected THEN 'false_alarm'
                                WHEN kept THEN 'kept' ELSE 'lost' END
  WHEN kept THEN 'escaped'
  WHEN rejected THEN 'caught'
  WHEN defect = 'duplicate' AND {dropped} THEN 'caught'
  WHEN defect = 'redelivered' THEN 'caught'
  ELSE 'lost'
END
"""
# A redelivered copy crossed batches: a pipeline de-duplicating by id drops it silently,
# which is right whatever --duplicates says (that option is about copies within a batch).
# A clean record that arrived late or in the new schema (grade.arrivals) is valid data:
# rejecting it is a false alarm, told apart so the report can name its cause.
FALSE_ALARMS = ("false_alarm", "rejected_late", "rejected_drift")


def _lineage_keys(con: duckdb.DuckDBPyConnection) -> None:
    """Batch ids as small integers: the join then hashes one BIGINT per record instead of a
    (text, integer) pair, and the join is the whole cost of grading."""
    con.execute(
        "CREATE OR REPLACE TABLE bids AS SELECT batch_id, row_number() OVER "
        "(ORDER BY batch_id) AS bid FROM (SELECT DISTINCT batch_id FROM truth)"
    )


def _id_keys(con: duckdb.DuckDBPyConnection) -> None:
    """`users` keyed by (natural_id, occurrence); occurrences counted in file order.

    A consumer row past the truth's occurrences is a repeat of a known id (duplicated) when
    the truth has that id at all, else extra. Only repeats (occurrence > 1) can be either, and
    they are few, so the truth is probed with them rather than the other way round.
    """
    con.execute("""
        CREATE OR REPLACE TABLE users AS
        SELECT natural_id, occurrence, stream AS stray_stream,
               (side = 0)::INTEGER AS kept_n, (side = 1)::INTEGER AS rej_n
        FROM (SELECT natural_id, stream, side,
                     row_number() OVER (PARTITION BY natural_id ORDER BY side, ord) AS occurrence
              FROM (SELECT natural_id, stream, 0 AS side, ord FROM kept
                    UNION ALL SELECT natural_id, stream, 1 AS side, ord FROM rejected)
              WHERE natural_id IS NOT NULL)
    """)
    con.execute("""
        CREATE OR REPLACE TABLE known_repeats AS
        SELECT DISTINCT t.natural_id
        FROM (SELECT DISTINCT natural_id FROM users WHERE occurrence > 1) r
        JOIN truth t ON t.natural_id = r.natural_id AND t.occurrence = 1
    """)


def join_sql(mode: str) -> str:
    """Id mode: every truth record beside the consumer row that holds its (id, occurrence),
    and consumer rows matching none (strays)."""
    assert mode == "id"
    return """
        WITH users AS (SELECT u.*, k.natural_id IS NOT NULL AS known_id
                       FROM users u LEFT JOIN known_repeats k USING (natural_id))
        SELECT coalesce(t.stream, users.stray_stream, 'unknown') AS stream, t.batch_id,
               t.row_no, t.defect, a.arrival, a.waits_for, t.batch_id IS NULL AS stray,
               coalesce(t.natural_id IS NULL AND t.batch_id IS NOT NULL, false) AS unmatched,
               coalesce(users.kept_n, 0) AS kept_n, coalesce(users.rej_n, 0) AS rej_n,
               coalesce(users.known_id, false) AS known_id
        FROM truth t FULL JOIN users
             ON t.natural_id = users.natural_id AND t.occurrence = users.occurrence
        LEFT JOIN arrival_rows a ON a.batch_id = t.batch_id AND a.row_no = t.row_no
    """


def _firsts(examples: int, candidates: str) -> str:
    """The first row numbers of each tally group that may hold misses: examples then need no
    second join."""
    if not examples:
        return "NULL::BIGINT[]"
    return f"min_by(row_no, row_no, {int(examples)}) FILTER (WHERE {candidates})"


def _lineage_tally(con: duckdb.DuckDBPyConnection, examples: int) -> None:
    """Mark joins, as the bare hand-written query does: a record is kept when its key is among
    the kept keys, however often; consumer rows are then counted against the truth apart
    (matched vs not: extra; matched beyond one per record: duplicated)."""
    key = "CASE WHEN u.row_no BETWEEN 0 AND 4294967295 THEN (b.bid << 32) | u.row_no END"
    con.execute(f"""
        CREATE OR REPLACE TABLE tally0 AS
        WITH tk AS (SELECT (b.bid << 32) | t.row_no AS key, t.stream, t.batch_id, t.row_no,
                           t.defect, a.arrival, a.waits_for FROM truth t
                    JOIN bids b USING (batch_id)
                    LEFT JOIN arrival_rows a USING (batch_id, row_no)),
             k AS (SELECT {key} AS key FROM kept u JOIN bids b USING (batch_id)),
             r AS (SELECT {key} AS key FROM rejected u JOIN bids b USING (batch_id)),
             flagged AS (SELECT *, coalesce(key IN (SELECT key FROM k), false) AS kept,
                                coalesce(key IN (SELECT key FROM r), false) AS rejected
                         FROM tk)
        SELECT stream, batch_id, defect, arrival, waits_for, false AS stray,
               false AS unmatched,
               false AS known_id, kept, rejected, count(*) AS n, NULL::BIGINT AS user_rows,
               {_firsts(examples, "defect IS NOT NULL OR rejected OR NOT kept")} AS firsts
        FROM flagged GROUP BY ALL
    """)
    con.execute(f"""
        CREATE OR REPLACE TABLE user_counts AS
        WITH tk AS (SELECT (b.bid << 32) | t.row_no AS key FROM truth t JOIN bids b
                    USING (batch_id))
        SELECT split_part(u.batch_id, '-', 1) AS stream, count(*) AS total,
               count(*) FILTER (WHERE {key} IN (SELECT key FROM tk)) AS matched
        FROM (SELECT batch_id, row_no FROM kept UNION ALL SELECT batch_id, row_no FROM rejected) u
        LEFT JOIN bids b USING (batch_id)
        GROUP BY ALL
    """)
    con.execute("""
        CREATE OR REPLACE TABLE strays AS
        SELECT coalesce(u.stream, 'unknown') AS stream, (u.total - u.matched)::BIGINT AS extra,
               0::BIGINT AS no_id, (u.matched - coalesce(t.placed, 0))::BIGINT AS duplicated
        FROM user_counts u LEFT JOIN (
            SELECT stream, sum(n) FILTER (WHERE kept OR rejected) AS placed
            FROM tally0 GROUP BY ALL) t USING (stream)
    """)


def _id_tally(con: duckdb.DuckDBPyConnection, examples: int) -> None:
    """One full join on (natural_id, occurrence), aggregated straight into the tally."""
    con.execute(f"""
        CREATE OR REPLACE TABLE tally0 AS
        SELECT stream, batch_id, defect, arrival, waits_for, stray, unmatched, known_id,
               kept_n > 0 AS kept,
               rej_n > 0 AS rejected, count(*) AS n, sum(kept_n + rej_n) AS user_rows,
               {_firsts(examples, "defect IS NOT NULL OR rej_n > 0 OR kept_n = 0")} AS firsts
        FROM ({join_sql("id")}) GROUP BY ALL
    """)
    con.execute("""
        CREATE OR REPLACE TABLE strays AS
        SELECT stream, sum(extra)::BIGINT AS extra, sum(no_id)::BIGINT AS no_id,
               sum(duplicated)::BIGINT AS duplicated
        FROM (
            SELECT stream,
                   coalesce(sum(user_rows) FILTER (WHERE stray AND NOT known_id), 0) AS extra,
                   0 AS no_id,
                   coalesce(sum(user_rows - n) FILTER (WHERE NOT stray AND (kept OR rejected)),
                            0)
                   + coalesce(sum(user_rows) FILTER (WHERE stray AND known_id), 0)
                       AS duplicated
            FROM tally0 GROUP BY ALL
            UNION ALL
            SELECT coalesce(stream, 'unknown'), 0, count(*), 0 FROM (
                SELECT stream FROM kept WHERE natural_id IS NULL
                UNION ALL SELECT stream FROM rejected WHERE natural_id IS NULL)
            GROUP BY ALL)
        GROUP BY ALL
    """)


def match(
    con: duckdb.DuckDBPyConnection,
    mode: str,
    duplicates: str,
    pending: bool = True,
    examples: int = 0,
) -> None:
    """Build `tally` (counts per stream, batch, defect and status) and `strays`.

    Pending rule: per stream, a batch later than the last batch the consumer's output mentions
    (batch ids sort by seq) has not been reached yet; its records are pending, not misses. So
    is a delayed batch (`grade.arrivals`) whose file is released after a batch the consumer has
    not reached: it is `held`, not lost.
    """
    (_lineage_keys if mode == "lineage" else _id_keys)(con)
    (_lineage_tally if mode == "lineage" else _id_tally)(con, examples)
    reached = (
        (
            "SELECT stream, max(batch_id) AS last FROM tally0 "
            "WHERE NOT stray AND (kept OR rejected) GROUP BY ALL"
        )
        if pending
        else ("SELECT stream, max(batch_id) AS last FROM tally0 WHERE NOT stray GROUP BY ALL")
    )
    con.execute(f"CREATE OR REPLACE TABLE reached AS {reached}")
    dropped = "true" if duplicates == "dropped" else "false"
    con.execute(f"""
        CREATE OR REPLACE MACRO fate(pending, unmatched, defect, arrival, kept, rejected) AS
        {STATUS.format(dropped=dropped)}
    """)
    # a delayed file lands after the file of the batch it was released after: a consumer that
    # reached that batch (and no later one) may not have it yet
    con.execute(f"""
        CREATE OR REPLACE TABLE held AS
        SELECT d.batch_id FROM delayed d JOIN reached r USING (stream)
        WHERE {"true" if pending else "false"} AND d.released_after >= r.last
              AND d.batch_id <= r.last
    """)
    waiting = "(t.{c} > r.last OR t.{c} IN (SELECT batch_id FROM held))"
    con.execute(f"""
        CREATE OR REPLACE TABLE tally AS
        SELECT stream, batch_id, pending, held, defect, arrival,
               fate(pending, unmatched, defect, arrival, kept, rejected) AS status,
               sum(n)::BIGINT AS n, flatten(list(firsts)) AS firsts
        FROM (SELECT t.*, t.batch_id IN (SELECT batch_id FROM held) AS held,
                     (r.last IS NULL OR {waiting.format(c="batch_id")}
                      OR coalesce({waiting.format(c="waits_for")}, false)) AS pending
              FROM tally0 t LEFT JOIN reached r USING (stream) WHERE NOT t.stray)
        GROUP BY ALL
    """)


def batch_list(con: duckdb.DuckDBPyConnection, query: str) -> str:
    """The batch ids a query returns, as an SQL list literal ('' quoted)."""
    ids = [row[0] for row in con.execute(query).fetchall()]
    return ", ".join("'" + i.replace("'", "''") + "'" for i in ids) or "NULL"
