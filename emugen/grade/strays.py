"""Stray rows: the consumer's rows that match no record emugen landed (`extra`), a few of them
named so the report can show where they came from."""

from __future__ import annotations

import duckdb

SIDES = "SELECT 'kept' AS side, {cols} FROM kept UNION ALL SELECT 'rejected', {cols} FROM rejected"


def extra_examples(con: duckdb.DuckDBPyConnection, mode: str, limit: int) -> list[dict]:
    """The first `limit` extra rows of each stream: which input held them (kept or rejected)
    and the lineage (or id) they carry, which no truth record has."""
    if mode == "lineage":
        rows = SIDES.format(cols="batch_id, row_no, natural_id")
        query = f"""
            SELECT coalesce(split_part(u.batch_id, '-', 1), 'unknown') AS stream, u.side,
                   u.batch_id, u.row_no, u.natural_id
            FROM ({rows}) u ANTI JOIN truth t USING (batch_id, row_no)"""
    else:
        rows = SIDES.format(cols="natural_id, stream")
        query = f"""
            SELECT coalesce(u.stream, 'unknown') AS stream, u.side, NULL AS batch_id,
                   NULL AS row_no, u.natural_id
            FROM ({rows}) u ANTI JOIN truth t USING (natural_id)
            WHERE u.natural_id IS NOT NULL"""
    cursor = con.execute(f"""
        SELECT stream, side, batch_id, row_no, natural_id FROM (
            SELECT *, row_number() OVER (PARTITION BY stream ORDER BY side, batch_id, row_no,
                                                                  natural_id) AS k
            FROM ({query}))
        WHERE k <= {int(limit)} ORDER BY stream, k
    """)
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
