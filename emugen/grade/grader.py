"""One grading run: load the truth and the consumer's output into DuckDB, match, score."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
from sqlalchemy import Engine

from emugen.errors import GradeInputError, GradeInputMissing
from emugen.grade.arrivals import load_ledger, mark_arrivals
from emugen.grade.inputs import Source, detect_match, normalise
from emugen.grade.locate import bad_value
from emugen.grade.match import batch_list
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
    arrivals: str | None = None  # an `emugen export arrivals` file (default: the store's)


def empty_rejected(con: duckdb.DuckDBPyConnection, mode: str) -> None:
    """A consumer without a reject output: nothing rejected."""
    keys = (
        "NULL::VARCHAR AS batch_id, NULL::BIGINT AS row_no, NULL::VARCHAR AS natural_id"
        if mode == "lineage"
        else "NULL::VARCHAR AS natural_id, NULL::VARCHAR AS stream"
    )
    con.execute(f"CREATE OR REPLACE VIEW rejected AS SELECT {keys}, 0::BIGINT AS ord LIMIT 0")


# Below this share of the output's keys found in the truth, the truth is refused as another
# run's (another seed, store or config) rather than graded into a meaningless recall of 0.
BELONGS = 0.5
PROBE = 1_000  # lineage: output rows whose id is compared with the truth's at the same key


def _found(con: duckdb.DuckDBPyConnection, mode: str) -> tuple[int, int]:
    """(output rows whose key the truth holds, output rows with a key): matching counted both,
    the rows matching no truth record being `strays.extra`."""
    keyed = (
        "SELECT sum(total) FROM user_counts"
        if mode == "lineage"
        else "SELECT sum(user_rows) FROM tally0"
    )
    n, extra = con.execute(
        f"SELECT coalesce(({keyed}), 0)::BIGINT, "
        "coalesce((SELECT sum(extra) FROM strays), 0)::BIGINT"
    ).fetchall()[0]
    return n - extra, n


def _same_ids(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Lineage: another seed has the same (batch_id, row_no) keys, so compare the ids of the
    first PROBE output rows that carry one with the truth's ids at those keys."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE probe AS SELECT batch_id, row_no, natural_id
                   FROM (SELECT batch_id, row_no, natural_id FROM kept
                         UNION ALL SELECT batch_id, row_no, natural_id FROM rejected)
                   WHERE natural_id IS NOT NULL LIMIT {PROBE}""")
    batches = batch_list(con, "SELECT DISTINCT batch_id FROM probe")
    n, same = con.execute(f"""
        SELECT count(*), count(*) FILTER (WHERE t.natural_id = p.natural_id) FROM probe p
        JOIN (SELECT batch_id, row_no, natural_id FROM truth WHERE batch_id IN ({batches})) t
        USING (batch_id, row_no)""").fetchall()[0]
    return same, n


def belongs(con: duckdb.DuckDBPyConnection, mode: str, truth_path: str | None) -> None:
    """Refuse a truth that holds fewer than half of the output's keys (in lineage mode, or
    whose ids differ at more than half of the keys that carry one)."""
    checks = [_found(con, mode)] + ([_same_ids(con)] if mode == "lineage" else [])
    for found, n in checks:
        if n and found < BELONGS * n:
            raise GradeInputError(
                f"truth {truth_path or '(the store)'}: this truth is not from the run that "
                f"produced this output ({found:,} of {n:,} keys found); grade against the "
                "store or an `emugen export truth` of the run that fed this pipeline"
            )


def run(job: Job, engine: Engine | None = None) -> Grade:
    """Grade `job.kept` / `job.rejected` against the truth (a file, else the store).

    A value that cannot be cast is located and named (exit 2); an input file that vanishes
    while it is read is GradeInputMissing, which `--follow` survives."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    sources = [s for s in (job.kept, job.rejected) if s is not None]
    try:
        return _run(con, job, sources, engine)
    except duckdb.IOException as exc:
        first = str(exc).strip().splitlines()[0]
        raise GradeInputMissing(
            f"an input vanished while it was read ({first}); grade again "
            "once the pipeline has finished writing it"
        ) from None
    except (duckdb.ConversionException, duckdb.InvalidInputException) as exc:
        raise bad_value(con, sources, job.truth_path, exc) from None
    finally:
        con.close()


def _run(
    con: duckdb.DuckDBPyConnection, job: Job, sources: list[Source], engine: Engine | None
) -> Grade:
    """Register the inputs and the truth, match, check the truth belongs to them, score."""
    mode = detect_match(con, sources) if job.match == "auto" else job.match
    for source in sources:
        normalise(con, source, mode, job.stream)
    if job.rejected is None:
        empty_rejected(con, mode)
    load_truth(con, engine=engine, path=job.truth_path, stream=job.stream)
    if not con.execute("SELECT count(*) FROM truth").fetchall()[0][0]:
        where = job.truth_path or "the store"
        raise GradeInputError(
            f"truth {where}: no records"
            f"{' of stream ' + job.stream if job.stream else ''}; "
            "land some batches first (`emugen pipeline run`)"
        )
    load_ledger(con, engine if job.truth_path is None else None, job.arrivals)
    mark_arrivals(con)
    match_records(con, mode, job.duplicates, job.pending, job.examples)
    belongs(con, mode, job.truth_path)
    return score(con, mode, job.duplicates, job.examples)
