"""The consumer's gold against the expected gold, row by row: each (window, key) row of both
joined once, every metric's cell judged in that row; only the cells not right are written one
metric at a time (`cmp`), for the explanations."""

from __future__ import annotations

import duckdb

from emugen.grade.answer.expected import metrics_of
from emugen.grade.answer.policy import Tolerance

STATES = ("ok", "wrong", "pending")


def _state(m: str, tolerance: Tolerance, later: str) -> str:
    """SQL: one metric's cell ok (within the tolerance of [lo, hi]), pending (absent, in a
    window the gold cannot hold yet) or wrong."""
    lo, hi, got = f'"{m}_lo"', f'"{m}_hi"', f'"{m}_got"'
    allowed_lo, allowed_hi = tolerance.allowed_sql(lo), tolerance.allowed_sql(hi)
    return f"""CASE
        WHEN coalesce({got}, 0) >= {lo} - {allowed_lo}
             AND coalesce({got}, 0) <= {hi} + {allowed_hi} THEN 'ok'
        WHEN {got} IS NULL AND ({later}) THEN 'pending'
        ELSE 'wrong' END AS "{m}_state\""""


def compare(
    con: duckdb.DuckDBPyConnection,
    table: str,
    tolerance: Tolerance,
    pending_after_ms: float,
    width_ms: int,
) -> dict:
    """`cmp_wide`: every row of either gold with each metric's lo, hi, got and state;
    `cmp(w, key, metric, lo, hi, got, state)`: the cells not ok; `wrong_keys(w, key)`: the
    rows with a wrong cell. The counts of cells per state."""
    metrics = metrics_of(table)
    top = con.execute("SELECT max(w) FROM got_wide").fetchall()[0][0]
    later = f"w > {int(top)}" if top is not None else "true"
    if pending_after_ms != float("inf"):  # a watermark has not passed the window's end yet
        later += f" OR w + {width_ms} > {int(pending_after_ms)}"
    values = ", ".join(
        f'coalesce(e."{m}_lo", 0)::BIGINT AS "{m}_lo", '
        f'coalesce(e."{m}_hi", e."{m}_lo", 0)::BIGINT AS "{m}_hi", g."{m}" AS "{m}_got"'
        for m in metrics
    )
    con.execute(f"""
        CREATE OR REPLACE TABLE cmp_wide AS
        WITH j AS (
          SELECT coalesce(e.w, g.w) AS w, coalesce(e.key, g.key) AS key, {values}
          FROM exp_wide e FULL OUTER JOIN got_wide g ON e.w = g.w AND e.key = g.key)
        SELECT *, {", ".join(_state(m, tolerance, later) for m in metrics)} FROM j""")
    parts = [
        f'SELECT w, key, \'{m}\' AS metric, "{m}_lo" AS lo, "{m}_hi" AS hi, '
        f'"{m}_got" AS got, "{m}_state" AS state FROM cmp_wide WHERE "{m}_state" <> \'ok\''
        for m in metrics
    ]
    con.execute("CREATE OR REPLACE TABLE cmp AS " + " UNION ALL ".join(parts))
    con.execute(
        "CREATE OR REPLACE TABLE wrong_keys AS SELECT DISTINCT w, key FROM cmp "
        "WHERE state = 'wrong'"
    )
    counts = ", ".join(
        " + ".join(f"count(*) FILTER (WHERE \"{m}_state\" = '{s}')" for m in metrics)
        for s in STATES
    )
    ok, wrong, pending = con.execute(f"SELECT {counts} FROM cmp_wide").fetchall()[0]
    return {"cells": ok + wrong + pending, "ok": ok, "wrong": wrong, "pending": pending}
