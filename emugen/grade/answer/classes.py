"""Per wrong cell, what each cause would change: the value of the cell with each class of
records taken out of (or put into) the expected count, computed in one pass of DuckDB SQL."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from emugen.grade.answer.expected import DISTINCT, HITS, metrics_of

# records the policy counts, which a consumer may have missed: taking them out lowers the cell
NEGATIVE = {
    "late_dropped": "counted_lo AND late",
    "delayed_missed": "counted_lo AND delayed",
    "clean_rejected": "counted_lo AND coalesce(NOT kept, false)",
}
# records the policy does not count, which a consumer may have counted: putting them in raises it
POSITIVE = {
    "late_counted": "eligible AND NOT counted_hi",
    "redelivered_counted": "valid AND copy",
    "defect_counted": "NOT valid",
    "unreleased": "valid AND NOT copy AND NOT released",
}
CLASSES = {**NEGATIVE, **POSITIVE}
EXAMPLES = 3


@dataclass
class Effect:
    """One class of records in one cell: what they change in the metric, how many, which."""

    delta: int
    count: int
    texts: str | list[str] = field(default_factory=list)  # a few records, as ID_TEXT

    @property
    def examples(self) -> list[dict]:
        return examples_of(self.texts)


Effects = dict[tuple[int, str, str], dict[str, Effect]]  # (w, key, metric) -> cause -> effect


# a record's id in one string: DuckDB hands strings to Python far faster than structs
ID_TEXT = "stream || '\t' || batch_id || '\t' || row_no || '\t' || coalesce(record_id, '')"


def _example(text: str) -> dict:
    stream, batch_id, row_no, record_id = text.split("\t")
    name = "event_id" if stream == "events" else "company_id"
    return {"batch_id": batch_id, "row_no": int(row_no), name: record_id or None}


def examples_of(texts: list[str] | str | None) -> list[dict]:
    """Example records from ID_TEXT strings (a list, or one string of lines)."""
    if isinstance(texts, str):
        texts = texts.split("\n") if texts else []
    return [_example(t) for t in texts or []]


def class_effects(con: duckdb.DuckDBPyConnection, table: str) -> Effects:
    """The effect of every class on every metric of the cells in `wrong_keys(w, key)`."""
    tags = ", ".join(f"CASE WHEN {pred} THEN '{name}' END" for name, pred in CLASSES.items())
    additive = [m for m in metrics_of(table) if m not in DISTINCT]
    aggs = []
    for m in additive:
        hit = HITS[table][m]
        aggs.append(f'count(*) FILTER (WHERE {hit}) AS "n_{m}"')
        aggs.append(
            f"array_to_string((list({ID_TEXT} ORDER BY k, batch_id, row_no) "
            f"FILTER (WHERE {hit}))[1:{EXAMPLES}], '\n') AS \"x_{m}\""
        )
    rows = con.execute(f"""
        WITH r AS (SELECT * FROM wrong_records),
        tagged AS (SELECT * FROM (SELECT r.*, unnest([{tags}]) AS cls FROM r)
                   WHERE cls IS NOT NULL)
        SELECT w, key, cls, {", ".join(aggs)} FROM tagged GROUP BY w, key, cls""").fetchall()
    out: Effects = {}
    for row in rows:
        w, key, cls = row[0], row[1], row[2]
        sign = -1 if cls in NEGATIVE else 1
        for i, m in enumerate(additive):
            n, examples = row[3 + 2 * i], row[4 + 2 * i]
            if n:
                out.setdefault((w, key, m), {})[cls] = Effect(sign * n, n, examples)
    if table == "company":
        _driver_effects(con, out)
    return out


def _driver_effects(con: duckdb.DuckDBPyConnection, out: Effects) -> None:
    """active_drivers is a distinct count: a class changes it by the drivers only it adds (or
    the counted drivers only it holds)."""
    flags, sums = [], []
    for name, pred in CLASSES.items():
        flags.append(f'bool_or({pred}) AS "has_{name}"')
        if name in NEGATIVE:
            flags.append(f'bool_or(counted_lo AND NOT ({pred})) AS "rest_{name}"')
            sums.append(f'-count(*) FILTER (WHERE lo AND NOT "rest_{name}") AS "{name}"')
        else:
            sums.append(f'count(*) FILTER (WHERE "has_{name}" AND NOT hi) AS "{name}"')
    rows = con.execute(f"""
        WITH r AS (SELECT * FROM wrong_records),
        d AS (SELECT w, key, driver_id, bool_or(counted_hi) AS hi, bool_or(counted_lo) AS lo,
                     {", ".join(flags)}
              FROM r WHERE driver_id IS NOT NULL GROUP BY w, key, driver_id)
        SELECT w, key, {", ".join(sums)} FROM d GROUP BY w, key""").fetchall()
    for row in rows:
        w, key = row[0], row[1]
        for name, delta in zip(CLASSES, row[2:], strict=True):
            if not delta:
                continue
            examples = out.get((w, key, "events"), {}).get(name)
            out.setdefault((w, key, "active_drivers"), {})[name] = Effect(
                int(delta), abs(int(delta)), examples.texts if examples else []
            )


def shifted(
    con: duckdb.DuckDBPyConnection, table: str, width_ms: int, keys: str
) -> dict[tuple, int]:
    """(w, key) -> shift in ms, for the rows in table `keys` whose every metric equals the
    expected value of the same key one window, or whole hours (a time zone), away."""
    n = len(metrics_of(table))
    shifts = sorted({width_ms, -width_ms, *(h * 3_600_000 for h in range(-14, 15) if h)})
    rows = con.execute(f"""
        WITH s AS (SELECT unnest({shifts}) AS s),
        g AS (SELECT g.* FROM got g SEMI JOIN {keys} USING (w, key)),
        m AS (SELECT g.w, g.key, s.s, coalesce(g.value, 0) BETWEEN coalesce(e.lo, 0)
                     AND coalesce(e.hi, 0) AS ok, coalesce(e.hi, 0) > 0 AS nonzero
              FROM g CROSS JOIN s
              LEFT JOIN exp_long e ON e.key = g.key AND e.metric = g.metric AND e.w = g.w + s.s)
        SELECT w, key, arg_min(s, abs(s)) FROM (
            SELECT w, key, s FROM m GROUP BY w, key, s
            HAVING bool_and(ok) AND bool_or(nonzero) AND count(*) = {n})
        -- a shifted row leaves the window it belongs to wrong (or empty) in the consumer's gold
        WHERE (w + s, key) NOT IN (SELECT (c.w, c.key) FROM cmp c WHERE c.got IS NOT NULL
                                   AND (c.w, c.key) NOT IN (SELECT (w, key) FROM wrong_keys))
        GROUP BY w, key""").fetchall()
    return {(w, key): s for w, key, s in rows}


def cell_records(
    con: duckdb.DuckDBPyConnection, table: str, keys: str
) -> dict[tuple, tuple[int, list]]:
    """(w, key) -> (records landed in the cell, a few counted ones) for the rows in `keys`."""
    rows = con.execute(f"""
        SELECT w, key, count(*),
               (list({ID_TEXT} ORDER BY stream DESC, k, batch_id, row_no)
                FILTER (WHERE counted_hi))[1:{EXAMPLES}]
        FROM wrong_records c SEMI JOIN {keys} USING (w, key) GROUP BY w, key""").fetchall()
    return {(w, key): (n, examples_of(examples)) for w, key, n, examples in rows}
