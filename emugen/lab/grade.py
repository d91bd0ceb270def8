"""Grading benchmark: `emugen grade` on a million records vs the hand-written DuckDB join."""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from emugen.grade.grader import Job, run
from emugen.grade.inputs import Source
from emugen.lab import best_of, peak_rss_mb

BATCH = 100_000
DEFECTS = (
    "missing_field",
    "null_value",
    "malformed_timestamp",
    "invalid_enum",
    "duplicate",
    "boundary_violation",
    "schema_mismatch",
)


def make_fixture(records: int, folder: Path, rate: float = 0.05, seed: int = 7) -> dict:
    """A truth file and a consumer's kept / rejected Parquet files for `records` events.

    The consumer catches 99 % of defects (1 % escape), falsely rejects 0.1 % of clean records
    and loses 0.1 %: every class the grader tallies has members.
    """
    rng = np.random.default_rng(seed)
    row = np.arange(records)
    batch_ids = pa.array([f"events-{1 + i // BATCH:09d}" for i in range(0, records, BATCH)])
    batch_of = pa.DictionaryArray.from_arrays(pa.array(row // BATCH, pa.int32()), batch_ids)
    ids = np.char.add("e", (rng.permutation(records) * 7919 % 10**12).astype(str))
    defect_idx = np.where(rng.random(records) < rate, rng.integers(0, len(DEFECTS), records), -1)
    # a duplicate carries the id of the record just before it: occurrence 2 of that id
    dup = (defect_idx == DEFECTS.index("duplicate")) & (row % BATCH > 0)
    ids = np.where(dup, np.roll(ids, 1), ids)
    no_defect = np.full(records, None, dtype=object)
    defect = pa.array(
        np.where(defect_idx >= 0, np.array(DEFECTS, dtype=object)[defect_idx], no_defect)
    )
    payload = pa.array(np.char.add(np.char.add('{"event_id":"', ids), '"}'))
    truth = pa.table(
        {
            "batch_id": batch_of.cast(pa.string()),
            "stream": pa.array(["events"] * records),
            "row_no": pa.array(row % BATCH, pa.int64()),
            "natural_id": pa.array(ids),
            "defect": defect,
            "field": pa.nulls(records, pa.string()),
            "original": pa.nulls(records, pa.string()),
            "injected": pa.nulls(records, pa.string()),
            "expected_reason": defect,
            "payload": payload,
        }
    )
    roll = rng.random(records)
    is_defect = defect_idx >= 0
    kept = (~is_defect & (roll >= 0.002)) | (is_defect & (roll < 0.01))
    rejected = (is_defect & (roll >= 0.01)) | (~is_defect & (roll < 0.001))
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.register("t", truth)
    paths = {name: folder / f"{name}.parquet" for name in ("truth", "kept", "rejected")}
    con.execute(
        f"COPY (SELECT *, row_number() OVER (PARTITION BY stream, natural_id ORDER BY "
        f"batch_id, row_no) AS occurrence FROM t) TO '{paths['truth']}' (FORMAT parquet)"
    )
    cols = ["batch_id", "row_no", "natural_id"]
    for name, mask in (("kept", kept), ("rejected", rejected)):
        side = (
            truth.select(cols)
            .filter(pa.array(mask))
            .rename_columns(["batch_id", "row_no", "event_id"])
        )
        pq.write_table(side, paths[name])
    con.close()
    return {name: str(p) for name, p in paths.items()}


HAND_JOIN = {
    "lineage": """
        SELECT t.defect, count(*) AS n, count(k.row_no) AS kept, count(r.row_no) AS rejected
        FROM read_parquet('{truth}') t
        LEFT JOIN read_parquet('{kept}') k USING (batch_id, row_no)
        LEFT JOIN read_parquet('{rejected}') r USING (batch_id, row_no)
        GROUP BY ALL""",
    "id": """
        WITH u AS (SELECT event_id AS natural_id, side, row_number() OVER (
                       PARTITION BY event_id ORDER BY side) AS occurrence
                   FROM (SELECT event_id, 0 AS side FROM read_parquet('{kept}')
                         UNION ALL SELECT event_id, 1 FROM read_parquet('{rejected}')))
        SELECT t.defect, count(*) AS n, count(*) FILTER (WHERE u.side = 0) AS kept,
               count(*) FILTER (WHERE u.side = 1) AS rejected
        FROM read_parquet('{truth}') t LEFT JOIN u USING (natural_id, occurrence)
        GROUP BY ALL""",
}


def hand_join(paths: dict, mode: str) -> list[tuple]:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        return con.execute(HAND_JOIN[mode].format(**paths)).fetchall()
    finally:
        con.close()


def bench_grade(records: int = 1_000_000, repeat: int = 3) -> dict:
    """`emugen grade` (truth from an export file) in both matching modes vs the bare join."""
    with tempfile.TemporaryDirectory(prefix="emugen-bench-grade-") as tmp:
        paths = make_fixture(records, Path(tmp))
        out: dict = {"records": records}
        for mode in ("lineage", "id"):
            job = Job(
                Source("kept", paths["kept"]),
                Source("rejected", paths["rejected"]),
                truth_path=paths["truth"],
                match=mode,
            )
            grade_s, grade = best_of(repeat, partial(run, job))
            join_s, _ = best_of(repeat, partial(hand_join, paths, mode))
            out[mode] = {
                "grade_s": grade_s,
                "join_s": join_s,
                "ratio": grade_s / join_s,
                "recall": grade.recall,
                "precision": grade.precision,
            }
        out["peak_rss_mb"] = peak_rss_mb()
    return out


def format_grade(r: dict) -> str:
    lines = [
        f"grade: {r['records']:,} records (5 % defective), truth from a Parquet export, "
        "best of runs"
    ]
    for mode in ("lineage", "id"):
        m = r[mode]
        lines.append(
            f"  {mode:<8} emugen grade {m['grade_s']:7.2f} s   hand-written DuckDB join "
            f"{m['join_s']:6.2f} s   -> {m['ratio']:.2f}x   (recall {100 * m['recall']:.2f} %, "
            f"precision {100 * m['precision']:.2f} %)"
        )
    lines.append(f"  targets: <= 10 s and <= 2x the join; peak RSS {r['peak_rss_mb']:.0f} MB")
    return "\n".join(lines)
