"""One grading run: load the truth and the consumer's output into DuckDB, match, score."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
from sqlalchemy import Engine

from emugen.errors import GradeInputError
from emugen.grade.inputs import Source, detect_match, normalise
from emugen.grade.match import match as match_records
from emugen.grade.score import Grade, score
from emugen.grade.truth import load_truth


@dataclass(frozen=True)
class Job:
    """Everything one grading run needs; `--follow` repeats the same job."""

    kept: Source
    rejected: Source | None = None
    truth_path: str | None = None
    match: str = "auto"  # auto | lineage | id
    duplicates: str = "quarantined"  # quarantined | dropped
    stream: str | None = None
    pending: bool = True
    examples: int = 5


def empty_rejected(con: duckdb.DuckDBPyConnection, mode: str) -> None:
    """A consumer without a reject output: nothing rejected."""
    keys = ("NULL::VARCHAR AS batch_id, NULL::BIGINT AS row_no" if mode == "lineage"
            else "NULL::VARCHAR AS natural_id, NULL::VARCHAR AS stream")
    con.execute(f"CREATE OR REPLACE VIEW rejected AS SELECT {keys}, 0::BIGINT AS ord LIMIT 0")


def run(job: Job, engine: Engine | None = None) -> Grade:
    """Grade `job.kept` / `job.rejected` against the truth (a file, else the store)."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        sources = [s for s in (job.kept, job.rejected) if s is not None]
        mode = detect_match(con, sources) if job.match == "auto" else job.match
        for source in sources:
            normalise(con, source, mode, job.stream)
        if job.rejected is None:
            empty_rejected(con, mode)
        load_truth(con, engine=engine, path=job.truth_path, stream=job.stream)
        if not con.execute("SELECT count(*) FROM truth").fetchall()[0][0]:
            where = job.truth_path or "the store"
            raise GradeInputError(f"truth {where}: no records"
                                  f"{' of stream ' + job.stream if job.stream else ''}; "
                                  "land some batches first (`emugen pipeline run`)")
        match_records(con, mode, job.duplicates, job.pending, job.examples)
        return score(con, mode, job.duplicates, job.examples)
    finally:
        con.close()
