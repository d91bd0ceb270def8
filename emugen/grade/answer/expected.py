"""The expected gold under a policy, per cell (window, key, metric), as DuckDB SQL.

`judge` marks each record: `counted_lo` / `counted_hi` (what the policy counts for certain /
at most: equal except for a watermark without a per-batch trigger), `dropped` (what the policy
drops as late) and `late` (behind the stream: its window had ended before the newest event of
the files released before it, or the ledger says late). `expected` aggregates them into
`exp_long(table_name, w, key, metric, lo, hi)`.
"""

from __future__ import annotations

import duckdb

from emugen.grade.answer.policy import COMPANY_METRICS, REGION_METRICS, Policy

# the SQL predicate that puts a record of the cell into each metric's count
HITS = {
    "company": {
        "events": "true",
        "start_driving": "event_type = 'start_driving'",
        "stopped_driving": "event_type = 'stopped_driving'",
        "delivered": "event_type = 'delivered'",
    },
    "region": {
        "companies_onboarded": "stream = 'companies'",
        "events": "stream = 'events'",
        "deliveries": "stream = 'events' AND event_type = 'delivered'",
    },
}
DISTINCT = {"active_drivers": "driver_id"}  # metrics counted as distinct values, not rows


def drop_sql(policy: Policy, width_ms: int) -> tuple[str, str]:
    """(dropped for certain, dropped at most): predicates over a record and its file's
    `progress`."""
    end = f"(w + {width_ms})"
    if policy.kind == "watermark":
        certain = f"coalesce({end} <= p.before_2 - {policy.delay_ms}, false)"
        if policy.trigger == "per-batch":
            return certain, certain
        # the most aggressive engine filters file k with the newest event before it
        return "false", f"coalesce({end} <= p.before_1 - {policy.delay_ms}, false)"
    if policy.kind == "lookback":
        frozen = (
            f"coalesce(w < p.before_1 // {width_ms} * {width_ms} - "
            f"{policy.windows * width_ms}, false)"
        )
        return frozen, frozen
    return "false", "false"


def judge(
    con: duckdb.DuckDBPyConnection, policy: Policy, width_ms: int, with_kept: bool = False
) -> None:
    """The view `judged`: every record with its policy flags (and `kept`, from the table
    `kept_rows`, when the consumer's silver is given); `cells_company` / `cells_region`.

    A view, not a table: the expected gold reads it once, and the explanations read only the
    wrong rows' records (classes.py `wrong_records`), where they are."""
    certain, at_most = drop_sql(policy, width_ms)
    kept = "kr.batch_id IS NOT NULL" if with_kept else "NULL::BOOLEAN"
    kept_join = (
        "LEFT JOIN kept_rows kr ON kr.batch_id = p.batch_id AND kr.row_no = p.row_no"
        if with_kept
        else ""
    )
    con.execute(f"""
        CREATE OR REPLACE VIEW judged AS
        -- each record's file progress by list index (fid), not by a join: the view is
        -- scanned several times and a join on (stream, k) costs each scan a hash probe
        WITH f AS (SELECT list(before_1 ORDER BY fid) AS b1, list(before_2 ORDER BY fid) AS b2
                   FROM progress),
        r AS (
          SELECT p.*, f.b1[p.fid] AS before_1, f.b2[p.fid] AS before_2,
                 p.event_ms // {width_ms} * {width_ms} AS w, {kept} AS kept
          FROM parsed p CROSS JOIN f
          {kept_join})
        SELECT * EXCLUDE (before_1, before_2, ledger_late, fid),
               valid AND NOT copy AND released AS eligible,
               valid AND NOT copy AND released AND NOT {certain} AS counted_hi,
               valid AND NOT copy AND released AND NOT {at_most} AS counted_lo,
               valid AND NOT copy AND released AND {at_most} AS dropped,
               ledger_late OR coalesce(w + {width_ms} <= before_1, false) AS late
        FROM r p""")
    con.execute("""
        CREATE OR REPLACE VIEW cells_company AS
        SELECT *, company_id AS key FROM judged
        WHERE stream = 'events' AND w IS NOT NULL AND company_id IS NOT NULL""")
    con.execute("""
        CREATE OR REPLACE VIEW cells_region AS
        WITH regions AS (SELECT record_id AS company_id, any_value(own_region) AS region
                         FROM judged WHERE stream = 'companies' AND counted_hi GROUP BY 1)
        SELECT j.*, coalesce(c.region, CASE WHEN j.stream = 'companies' THEN j.own_region END)
                 AS key
        FROM judged j LEFT JOIN regions c
          ON j.stream = 'events' AND c.company_id = j.company_id
        WHERE j.w IS NOT NULL
          AND coalesce(c.region, CASE WHEN j.stream = 'companies' THEN j.own_region END)
              IS NOT NULL""")


def metrics_of(table: str) -> tuple[str, ...]:
    return COMPANY_METRICS if table == "company" else REGION_METRICS


def metric_sql(table: str, metric: str, flag: str) -> str:
    """The aggregate of one metric over the records where `flag` holds."""
    if metric in DISTINCT:
        return f"count(DISTINCT {DISTINCT[metric]}) FILTER (WHERE {flag})"
    return f"count(*) FILTER (WHERE {flag} AND {HITS[table][metric]})"


def expected(con: duckdb.DuckDBPyConnection, table: str, band: bool) -> None:
    """`exp_wide(w, key, <metric>_lo, <metric>_hi...)` and the view `exp_long(w, key, metric,
    lo, hi)`: the expected gold of `table` (company | region)."""
    metrics = metrics_of(table)
    cols = []
    for m in metrics:
        cols.append(f'{metric_sql(table, m, "counted_lo")} AS "{m}_lo"')
        cols.append(
            f'{metric_sql(table, m, "counted_hi")} AS "{m}_hi"' if band else f'NULL AS "{m}_hi"'
        )
    con.execute(f"""CREATE OR REPLACE TABLE exp_wide AS
                    SELECT w, key, {", ".join(cols)} FROM cells_{table}
                    WHERE counted_hi GROUP BY w, key""")
    parts = [
        f"SELECT w, key, '{m}' AS metric, \"{m}_lo\"::BIGINT AS lo, "
        f'coalesce("{m}_hi", "{m}_lo")::BIGINT AS hi FROM exp_wide'
        for m in metrics
    ]
    # a view: the comparison joins exp_wide's rows; only a grid check or a shift search
    # reads cells one metric at a time
    con.execute("CREATE OR REPLACE VIEW exp_long AS " + " UNION ALL ".join(parts))


def conservation(con: duckdb.DuckDBPyConnection, table: str) -> list[dict]:
    """Per window of the graded table's records: landed = counted + quarantined +
    deduplicated + dropped as late (+ waiting in a delayed batch not released yet)."""
    stream = "events" if table == "company" else "companies"
    rows = con.execute(f"""
        SELECT w, count(*) AS landed, count(*) FILTER (WHERE counted_lo) AS counted,
               count(*) FILTER (WHERE NOT valid) AS quarantined,
               count(*) FILTER (WHERE valid AND copy) AS deduplicated,
               count(*) FILTER (WHERE dropped) AS dropped_late,
               count(*) FILTER (WHERE valid AND NOT copy AND NOT released) AS unreleased
        FROM judged WHERE stream = '{stream}' GROUP BY w ORDER BY w NULLS LAST""").fetchall()
    names = (
        "window_start_ms",
        "landed",
        "counted",
        "quarantined",
        "deduplicated",
        "dropped_late",
        "unreleased",
    )
    out = []
    for row in rows:
        item = dict(zip(names, row, strict=True))
        item["balanced"] = item["landed"] == sum(item[n] for n in names[2:])
        out.append(item)
    return out
