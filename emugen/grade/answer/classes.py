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


def wrong_records(table: str, keys: str = "wrong_keys") -> str:
    """SQL: the records of the rows in table `keys(w, key)`, read where they are (no copy:
    the explanations read them in one scan, or two for a distinct count)."""
    return f"(SELECT * FROM cells_{table} SEMI JOIN {keys} USING (w, key))"


def effect_table(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """`tagged`: the wrong rows' records of each class (a record of two classes twice);
    `effects(w, key, metric, cls, delta, n)`: the effect of every class on every metric of the
    rows in `wrong_keys(w, key)` (a distinct count's only where it is wrong: no other is
    explained). Their example records are read by `examples_sql`, only for
    the effects an explanation names."""
    tags = ", ".join(f"CASE WHEN {pred} THEN '{name}' END" for name, pred in CLASSES.items())
    # the classes a record is in, unnested: a list of only those, not one row per class
    con.execute(f"""
        CREATE OR REPLACE TABLE tagged AS
        SELECT w, key, k, stream, batch_id, row_no, record_id, event_type, driver_id,
               unnest(list_filter([{tags}], lambda c: c IS NOT NULL)) AS cls
        FROM {wrong_records(table)} WHERE {" OR ".join(f"({p})" for p in CLASSES.values())}""")
    additive = [m for m in metrics_of(table) if m not in DISTINCT]
    counts = ", ".join(f'count(*) FILTER (WHERE {HITS[table][m]}) AS "{m}"' for m in additive)
    con.execute(f"""
        CREATE OR REPLACE TABLE effects AS
        WITH per AS (SELECT w, key, cls, {counts} FROM tagged GROUP BY w, key, cls),
        u AS (UNPIVOT per ON {", ".join(f'"{m}"' for m in additive)} INTO NAME metric VALUE n)
        SELECT w, key, metric, cls, CASE WHEN cls IN {tuple(NEGATIVE)} THEN -n ELSE n END
                 AS delta, n
        FROM u WHERE n > 0""")
    if table == "company":
        _driver_effects(con)


def examples_sql(table: str, needed: str) -> str:
    """SQL: (w, key, metric, cls, x) for the effects in relation `needed(w, key, metric, cls)`,
    x the first few of the class's records that the metric counts, as lines of ID_TEXT (a
    distinct count's are the class's records of the cell)."""
    hit = " ".join(f"WHEN '{m}' THEN {pred}" for m, pred in HITS[table].items())
    return f"""
        SELECT n.w, n.key, n.metric, n.cls,
               array_to_string(arg_min({ID_TEXT}, (k, batch_id, row_no), {EXAMPLES}), '\n') AS x
        FROM {needed} n JOIN tagged t USING (w, key, cls)
        WHERE CASE n.metric {hit} ELSE true END
        GROUP BY ALL"""


def example_columns_sql(table: str, needed: str) -> str:
    """SQL: as `examples_sql`, the examples as columns: b1, r1, n1, i1 (batch_id, row_no, the
    id's name and the id) to b3 ... i3, NULL past the last. Scalars reach Python far faster
    than strings to split or structs."""
    hit = " ".join(f"WHEN '{m}' THEN {pred}" for m, pred in HITS[table].items())
    picked = (
        "arg_min({'b': batch_id, 'r': row_no, 's': stream, 'i': nullif(record_id, '')}, "
        f"(k, batch_id, row_no), {EXAMPLES})"
    )
    columns = ", ".join(
        f"x[{i}].b AS b{i}, x[{i}].r AS r{i}, "
        f"CASE x[{i}].s WHEN 'events' THEN 'event_id' ELSE 'company_id' END AS n{i}, "
        f"x[{i}].i AS i{i}"
        for i in range(1, EXAMPLES + 1)
    )
    return f"""
        SELECT w, key, metric, cls, {columns} FROM (
          SELECT n.w, n.key, n.metric, n.cls, {picked} AS x
          FROM {needed} n JOIN tagged t USING (w, key, cls)
          WHERE CASE n.metric {hit} ELSE true END
          GROUP BY ALL)"""


def _driver_effects(con: duckdb.DuckDBPyConnection) -> None:
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
    con.execute(f"""
        INSERT INTO effects
        WITH distinct_wrong AS (SELECT w, key FROM cmp
                                WHERE state = 'wrong' AND metric = 'active_drivers'),
        d AS (SELECT w, key, driver_id, bool_or(counted_hi) AS hi, bool_or(counted_lo) AS lo,
                     {", ".join(flags)}
              -- only a driver with a record of some class can change the count, and only a
              -- row whose count is wrong is explained (often none: a copy adds no driver)
              FROM {wrong_records("company", "distinct_wrong")}
                   SEMI JOIN (SELECT DISTINCT w, key, driver_id FROM tagged)
                   USING (w, key, driver_id)
              GROUP BY w, key, driver_id),
        s AS (SELECT w, key, {", ".join(sums)} FROM d GROUP BY w, key),
        u AS (UNPIVOT s ON {", ".join(f'"{n}"' for n in CLASSES)} INTO NAME cls VALUE delta)
        SELECT w, key, 'active_drivers', cls, delta, abs(delta) FROM u WHERE delta <> 0""")


def effects_of(con: duckdb.DuckDBPyConnection, table: str, keys: str) -> Effects:
    """The effects of the cells whose (w, key) is in table `keys`, by cell and class."""
    rows = con.execute(f"""
        WITH e AS (SELECT * FROM effects SEMI JOIN {keys} USING (w, key))
        SELECT e.w, e.key, e.metric, e.cls, e.delta, e.n, x.x
        FROM e JOIN ({examples_sql(table, "e")}) x USING (w, key, metric, cls)""").fetchall()
    out: Effects = {}
    for w, key, metric, cls, delta, n, x in rows:
        out.setdefault((w, key, metric), {})[cls] = Effect(int(delta), int(n), x)
    return out


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
        -- the smallest shift; of a window back and a window ahead that both fit, the one back
        -- (the row was written a window late), so that the report is the same on every run
        SELECT w, key, arg_min(s, abs(s) * 2 + (s > 0)::INT) FROM (
            SELECT w, key, s FROM m GROUP BY w, key, s
            HAVING bool_and(ok) AND bool_or(nonzero) AND count(*) = {n})
        -- a shifted row leaves the window it belongs to wrong (or empty) in the consumer's gold
        WHERE (w + s, key) NOT IN (SELECT (g.w, g.key) FROM got g WHERE g.value IS NOT NULL
                                   AND (g.w, g.key) NOT IN (SELECT (w, key) FROM wrong_keys))
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
        FROM {wrong_records(table, keys)} GROUP BY w, key""").fetchall()
    return {(w, key): (n, examples_of(examples)) for w, key, n, examples in rows}
