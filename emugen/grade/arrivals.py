"""The arrival ledger as the grader reads it: which records arrived late, which batch files
wait for a later one (delayed), and from which batch a stream's records carry a new field
(drift). Read from an `emugen export arrivals` file, else the store, else empty.

`arrival_rows` (batch_id, row_no, arrival) marks the clean records a filter must keep whatever
their arrival: `late` ones and, from a drift point on, those carrying the drift field. `delayed`
(stream, batch_id, released_after) names the batches whose file lands only after a later one's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy import Engine, select

from emugen.db.ledger import LEDGER_COLUMNS, ArrivalEntry
from emugen.errors import GradeInputError

LEDGER_TYPES = {
    "row_no": "BIGINT",
    "entry": "BIGINT",
    "lateness_ms": "BIGINT",
    "original_row_no": "BIGINT",
    "from_seq": "BIGINT",
}
# the columns the grader reads; a file without the drift ones has no drift point
READ = ("batch_id", "row_no", "condition", "lateness_ms", "released_after_batch_id")
OPTIONAL = ("stream", "from_seq", "field", "original_batch_id")
EMPTY_LEDGER = (
    "SELECT "
    + ", ".join(f"NULL::{LEDGER_TYPES.get(c, 'VARCHAR')} AS {c}" for c in READ + OPTIONAL)
    + " LIMIT 0"
)


def _typed(have: set[str]) -> str:
    return ", ".join(
        f"{c}::{LEDGER_TYPES.get(c, 'VARCHAR')} AS {c}"
        if c in have
        else f"NULL::{LEDGER_TYPES.get(c, 'VARCHAR')} AS {c}"
        for c in READ + OPTIONAL
    )


def load_ledger(con: duckdb.DuckDBPyConnection, engine: Engine | None, path: str | None) -> None:
    """The table `ledger` from an `emugen export arrivals` file, else the store, else empty."""
    if path is not None:
        from emugen.grade.inputs import reader_sql

        con.execute(
            f"CREATE OR REPLACE VIEW ledger_file AS SELECT * FROM "
            f"{reader_sql(con, path, 'arrivals')}"
        )
        have = {d[0].lower() for d in con.execute("SELECT * FROM ledger_file LIMIT 0").description}
        missing = [c for c in ("batch_id", "row_no", "condition") if c not in have]
        if missing:
            raise GradeInputError(
                f"arrivals {path}: no column {', '.join(missing)}; write it "
                "with `emugen export arrivals --out PATH`"
            )
        con.execute(f"CREATE OR REPLACE TABLE ledger AS SELECT {_typed(have)} FROM ledger_file")
        return
    rows: Sequence[Any] = []
    if engine is not None:
        with engine.connect() as conn:
            rows = conn.execute(select(*(getattr(ArrivalEntry, c) for c in LEDGER_COLUMNS))).all()
    if not rows:
        con.execute(f"CREATE OR REPLACE TABLE ledger AS {EMPTY_LEDGER}")
        return
    table = pa.table({c: pa.array([r[i] for r in rows]) for i, c in enumerate(LEDGER_COLUMNS)})
    con.register("ledger_arrow", table)
    con.execute(
        f"CREATE OR REPLACE TABLE ledger AS SELECT {_typed(set(LEDGER_COLUMNS))} FROM ledger_arrow"
    )
    con.unregister("ledger_arrow")


def mark_arrivals(con: duckdb.DuckDBPyConnection) -> None:
    """`arrival_rows`, `delayed` and `drifts` from `ledger` and `truth_detail`.

    A drifted record is a clean one of the drift's stream, in its batch or a later one, whose
    raw text carries the drift field: only those batches' payloads are read.
    """
    con.execute("""
        CREATE OR REPLACE TABLE drifts AS
        SELECT coalesce(stream, split_part(batch_id, '-', 1)) AS stream,
               min(batch_id) AS batch_id, any_value(field) AS field
        FROM ledger WHERE condition = 'drift' AND field IS NOT NULL GROUP BY ALL
    """)
    con.execute("""
        CREATE OR REPLACE TABLE delayed AS
        SELECT split_part(batch_id, '-', 1) AS stream, batch_id,
               any_value(released_after_batch_id) AS released_after
        FROM ledger WHERE condition = 'delayed' AND released_after_batch_id IS NOT NULL
        GROUP BY ALL
    """)
    drifted = (
        """
        UNION ALL
        SELECT t.batch_id, t.row_no, 'drift', NULL FROM truth_detail t
        JOIN drifts d ON t.stream = d.stream AND t.batch_id >= d.batch_id
        WHERE t.defect IS NULL AND contains(t.payload, '"' || d.field || '"')"""
        if con.execute("SELECT count(*) FROM drifts").fetchall()[0][0]
        else ""
    )
    # late first: a record both late and drifted is reported late. A redelivered copy
    # `waits_for` its original's batch: while that is pending, so is the copy (a consumer
    # keeping the first copy it saw is right until the original arrives).
    con.execute(f"""
        CREATE OR REPLACE TABLE arrival_rows AS
        SELECT batch_id, row_no, min(arrival) AS arrival, min(waits_for) AS waits_for FROM (
            SELECT batch_id, row_no, CASE WHEN condition = 'late' THEN 'late' END AS arrival,
                   CASE WHEN condition = 'redelivered' THEN original_batch_id END AS waits_for
            FROM ledger
            WHERE condition IN ('late', 'redelivered') AND row_no IS NOT NULL{drifted})
        GROUP BY ALL
    """)
