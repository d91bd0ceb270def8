"""One answer-grading run: read the consumer's gold, build the expected gold under the
declared policy from the truth and the arrival ledger, compare, explain, account."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce
from math import gcd

import duckdb
from sqlalchemy import Engine

from emugen.errors import GradeInputError
from emugen.grade.answer.classes import wrong_records
from emugen.grade.answer.compare import compare
from emugen.grade.answer.consumer import load_gold
from emugen.grade.answer.expected import conservation, expected, judge, metric_sql, metrics_of
from emugen.grade.answer.explain import by_cause, explain
from emugen.grade.answer.policy import Policy, Tolerance
from emugen.grade.answer.records import build_records
from emugen.grade.arrivals import load_ledger
from emugen.grade.inputs import Source, detect_match, normalise
from emugen.grade.truth import load_truth


@dataclass(frozen=True)
class GoldJob:
    """Everything one answer grading needs; `--follow` repeats it."""

    gold: Source
    columns: dict[str, str] = field(default_factory=dict)
    stream: str | None = None
    width_ms: int | None = None
    policy: Policy = Policy()
    tolerance: Tolerance = Tolerance()
    truth_path: str | None = None
    arrivals_path: str | None = None
    kept: Source | None = None
    rejected: Source | None = None


def mark_kept(con: duckdb.DuckDBPyConnection, kept: Source, rejected: Source | None) -> None:
    """`kept_rows(batch_id, row_no)`: the records the consumer's silver holds (by lineage,
    else by id and occurrence in release order)."""
    sources = [s for s in (kept, rejected) if s is not None]
    mode = detect_match(con, sources)
    normalise(con, kept, mode, None)
    if mode == "lineage":
        con.execute(
            "CREATE OR REPLACE TABLE kept_rows AS SELECT DISTINCT batch_id, row_no FROM kept"
        )
        return
    con.execute("""CREATE OR REPLACE TABLE kept_rows AS
        WITH j AS (SELECT p.batch_id, p.row_no, p.stream, p.record_id,
                          row_number() OVER (PARTITION BY p.stream, p.record_id
                                             ORDER BY f.k, p.batch_id, p.row_no) AS occ
                   FROM parsed p JOIN files f USING (stream, batch_id)),
        k AS (SELECT natural_id, stream, row_number() OVER (PARTITION BY stream, natural_id
                                                           ORDER BY ord) AS occ FROM kept)
        SELECT j.batch_id, j.row_no FROM j
        JOIN k ON k.natural_id = j.record_id AND k.stream = j.stream AND k.occ = j.occ""")


def split(con: duckdb.DuckDBPyConnection, table: str, cells: list[dict]) -> None:
    """Each wrong cell's difference as filter (expected vs gold from the pipeline's own
    silver) and aggregation (that gold vs what it wrote)."""
    parts = [
        f"SELECT w, key, '{m}' AS metric, {metric_sql(table, m, 'kept')} AS v "
        f"FROM {wrong_records(table)} GROUP BY w, key"
        for m in metrics_of(table)
    ]
    own = {(w, k, m): v for w, k, m, v in con.execute(" UNION ALL ".join(parts)).fetchall()}
    for cell in cells:
        silver = own.get((cell["window_start_ms"], cell["key"], cell["metric"]), 0)
        expected_value = cell.get("expected", cell.get("expected_hi"))
        cell["from_own_silver"] = silver
        cell["filter"] = silver - expected_value
        cell["aggregation"] = (cell["got"] or 0) - silver


def check_grid(con: duckdb.DuckDBPyConnection, width_ms: int, where: str) -> None:
    """Refuse a window shorter than the gold's own: its windows lie k > 1 windows apart while
    the data fills the windows between them."""
    starts = sorted(
        int(r[0])
        for r in con.execute("SELECT DISTINCT w FROM got_wide WHERE w IS NOT NULL").fetchall()
    )
    if len(starts) < 2:
        return
    low, high = starts[0], starts[-1]
    spacing = reduce(gcd, (w - low for w in starts[1:]))
    if spacing <= width_ms or spacing % width_ms:
        return
    between = con.execute(
        f"SELECT count(*) FROM exp_long WHERE w > {low} AND w < {high} "
        f"AND (w - {low}) % {spacing} <> 0"
    ).fetchall()[0][0]
    if between:
        raise GradeInputError(
            f"gold {where}: its windows are {spacing / 1000:g} s apart but the data fills "
            f"{width_ms / 1000:g}-second windows between them; give the window the pipeline "
            f"uses with --window (e.g. --window {spacing // 1000}s)"
        )


def pending_after(con: duckdb.DuckDBPyConnection, policy: Policy) -> float:
    """The end of the last window a watermark has surely passed, or +inf."""
    if policy.kind != "watermark":
        return float("inf")
    row = con.execute(
        "SELECT before_1 FROM progress WHERE stream = 'events' AND released ORDER BY k DESC LIMIT 1"
    ).fetchall()
    return float(row[0][0] - policy.delay_ms) if row and row[0][0] is not None else float("inf")


def run_gold(job: GoldJob, engine: Engine | None = None) -> dict:
    """Grade the consumer's gold; the result as the `gold` part of the JSON report."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        gold = load_gold(con, job.gold, job.columns, job.stream, job.width_ms)
        load_truth(con, engine=engine, path=job.truth_path)
        if not con.execute("SELECT count(*) FROM truth_detail").fetchall()[0][0]:
            raise GradeInputError(
                f"truth {job.truth_path or 'the store'}: no records; land "
                "some batches first (`emugen pipeline run`)"
            )
        load_ledger(con, engine if job.truth_path is None else None, job.arrivals_path)
        build_records(con, first_arrival=job.policy.kind != "exact")
        if job.kept is not None:
            mark_kept(con, job.kept, job.rejected)
        judge(con, job.policy, gold.width_ms, with_kept=job.kept is not None)
        expected(con, gold.table, job.policy.band)
        check_grid(con, gold.width_ms, gold.where)
        after = pending_after(con, job.policy)
        counts = compare(con, gold.table, job.tolerance, after, gold.width_ms)
        cells, late_pending = explain(con, gold.table, gold.width_ms, job.tolerance)
        if job.kept is not None and cells:
            split(con, gold.table, cells)
        counts["wrong"] -= late_pending
        counts["pending"] += late_pending
        return {
            "policy": job.policy.label(),
            "table": gold.table,
            "source": gold.where,
            "window_seconds": gold.width_ms // 1000,
            **counts,
            "by_cause": by_cause(cells),
            "wrong_cells": cells,
            "conservation": conservation(con, gold.table),
        }
    finally:
        con.close()
