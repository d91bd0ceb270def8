"""Compare the consumer's gold with the expected gold; explain every wrong cell.

For each wrong (window, key, metric) the alternative values of the cell are the expected
value with each class of records (classes.py) taken out or put in. One whole class that gives
what the consumer got is the explanation; else part of one class (a consumer that lost some of
the late records, say); else the whole row moved by a window or by whole hours
(`window_shifted`, every metric of the row equal to the other window's); else the smallest
combination of whole classes; else `no_such_window` when no record lands in the cell at all;
else `unexplained`, with the cell's records.
"""

from __future__ import annotations

from itertools import combinations

import duckdb
import pyarrow as pa

from emugen.grade.answer.classes import (
    NEGATIVE,
    Effect,
    cell_records,
    effect_table,
    effects_of,
    example_columns_sql,
    shifted,
)
from emugen.grade.answer.policy import Tolerance

CAUSES = (
    "late_dropped",
    "late_counted",
    "redelivered_counted",
    "defect_counted",
    "clean_rejected",
    "delayed_missed",
    "window_shifted",
    "no_such_window",
    "unexplained",
)
# which class names a difference first when several would: a delayed batch's records are late
# because the batch was delayed, so that is the cause named
PREFERENCE = (
    "delayed_missed",
    "late_dropped",
    "late_counted",
    "redelivered_counted",
    "defect_counted",
    "clean_rejected",
    "unreleased",
)


def _order(effects: dict[str, Effect]) -> list[str]:
    """The classes present, in PREFERENCE order; a clean record the consumer's own silver
    lacks is named as rejected first: that is known, not inferred."""
    names = [n for n in PREFERENCE if n in effects and effects[n].delta]
    return sorted(names, key=lambda n: n != "clean_rejected")


def _search(effects: dict[str, Effect], target: float, slack: float, most: int) -> list[str] | None:
    """The smallest set of at most `most` whole classes whose deltas add up to `target`."""
    names = _order(effects)
    for size in range(1, min(most, len(names)) + 1):
        for combo in combinations(names, size):
            if abs(sum(effects[n].delta for n in combo) - target) <= slack:
                return list(combo)
    return None


def _whole(effects: dict[str, Effect], names: list[str] | None) -> list[dict] | None:
    if names is None:
        return None
    return [{"cause": n, "count": effects[n].count, "examples": effects[n].examples} for n in names]


def _partial(effects: dict[str, Effect], target: float) -> list[dict] | None:
    """Part of one class: the consumer lost (or added) some, not all, of its records."""
    for name in _order(effects):
        effect = effects.get(name)
        if (
            effect
            and effect.delta
            and (effect.delta > 0) == (target > 0)
            and abs(effect.delta) >= abs(target)
        ):
            share = round(abs(target))
            return [{"cause": name, "count": share, "examples": effect.examples[:share]}]
    return None


def _target(lo: int, hi: int, got: float | None) -> float:
    value = 0 if got is None else got
    return value - lo if value < lo else value - hi


def _causes(
    found: dict[str, Effect], target: float, slack: float, shift: int | None
) -> list[dict] | None:
    """One whole class, else part of one class, else a shifted row, else several classes.

    Part of a class comes before a shift: with small counts a row often equals a neighbour's
    by chance, while a class big enough to hold the difference is evidence in the cell."""
    causes = _whole(found, _search(found, target, slack, 1)) or _partial(found, target)
    if causes is None and shift is not None:
        causes = [{"cause": "window_shifted", "count": 1, "shift_ms": shift, "examples": []}]
    return causes or _whole(found, _search(found, target, slack, len(found)))


def _open_causes(
    found: dict[str, Effect],
    target: float,
    slack: float,
    shift: int | None,
    landed: tuple[int, list],
) -> list[dict]:
    """A row no whole class explains: `_causes`, else `no_such_window` when no record lands
    in the cell, else `unexplained` with the cell's records."""
    causes = _causes(found, target, slack, shift)
    if causes is not None:
        return causes
    count, examples = landed
    return [
        {
            "cause": "no_such_window" if not count else "unexplained",
            "count": count,
            "examples": examples,
        }
    ]


def _cell(
    w: int, key: str, metric: str, lo: int, hi: int, got: float | None, causes: list[dict]
) -> dict:
    cell = {
        "window_start_ms": w,
        "key": key,
        "metric": metric,
        "got": got,
        "difference": _target(lo, hi, got),
        "causes": [c for c in causes if c["cause"] != "unreleased"],
    }
    if lo == hi:
        cell["expected"] = lo
    else:
        cell["expected_lo"], cell["expected_hi"] = lo, hi
    return cell


def _first_class(table: str, tolerance: Tolerance) -> str:
    """SQL: every wrong cell, worst first, with the first whole class (in `_order`'s order)
    whose effect is the difference, if one is, and its examples: chosen set-wise, in one
    query."""
    ranked = sorted(PREFERENCE, key=lambda n: n != "clean_rejected")
    rank = ", ".join(f"('{n}', {i})" for i, n in enumerate(ranked))
    value = "coalesce(got, 0)"
    return f"""
        WITH c AS (
          SELECT w, key, metric, lo, hi, got,
                 CASE WHEN {value} < lo THEN {value} - lo ELSE {value} - hi END AS target,
                 {tolerance.allowed_sql("hi")} AS slack
          FROM cmp WHERE state = 'wrong'),
        r(cls, rank) AS (VALUES {rank}),
        m AS MATERIALIZED (
          SELECT c.w, c.key, c.metric, e.cls, e.n
          FROM c JOIN effects e USING (w, key, metric) JOIN r USING (cls)
          WHERE e.delta <> 0 AND abs(e.delta - c.target) <= c.slack
          QUALIFY row_number() OVER (PARTITION BY c.w, c.key, c.metric ORDER BY r.rank) = 1),
        x AS ({example_columns_sql(table, "m")})
        SELECT c.w, c.key, c.metric, c.lo, c.hi, c.got, m.cls, m.n,
               x.* EXCLUDE (w, key, metric, cls)
        FROM c LEFT JOIN m USING (w, key, metric) LEFT JOIN x USING (w, key, metric, cls)
        ORDER BY greatest(abs({value} - c.lo), abs({value} - c.hi)) DESC, c.w, c.key, c.metric"""


def _open(con: duckdb.DuckDBPyConnection, keys: list[tuple[int, str]]) -> None:
    """The table `open_keys(w, key)`: the rows no whole class explains."""
    con.register(
        "open_arrow",
        pa.table(
            {
                "w": pa.array([k[0] for k in keys], pa.int64()),
                "key": pa.array([k[1] for k in keys], pa.string()),
            }
        ),
    )
    con.execute("CREATE OR REPLACE TABLE open_keys AS SELECT * FROM open_arrow")
    con.unregister("open_arrow")


def _examples(parts: list[list[list]]) -> list[list[dict]]:
    """Per row, its example records from the columns (batch_id, row_no, id name, id) of the
    first, second and third example (None past the last)."""
    out = []
    for row in zip(*(zip(*part, strict=True) for part in parts), strict=True):
        out.append([{"batch_id": b, "row_no": r, n: i} for b, r, n, i in row if b is not None])
    return out


def explain(
    con: duckdb.DuckDBPyConnection, table: str, width_ms: int, tolerance: Tolerance
) -> tuple[list[dict], int]:
    """Every wrong cell with its causes (worst first); how many turned out to be pending
    (only records of a delayed batch not released yet are missing)."""
    if not con.execute("SELECT count(*) FROM wrong_keys").fetchall()[0][0]:
        return [], 0
    effect_table(con, table)
    # by column (numpy, then lists): far fewer Python calls than row tuples
    columns = con.execute(_first_class(table, tolerance)).fetchnumpy()
    w_, key_, metric_, lo_, hi_, got_, cls_, n_ = (
        columns[c].tolist() for c in ("w", "key", "metric", "lo", "hi", "got", "cls", "n")
    )
    examples = _examples([[columns[f"{c}{i}"].tolist() for c in "brni"] for i in (1, 2, 3)])
    # one whole class first; only the rows it leaves open are searched for a shift, or listed
    rows = zip(w_, key_, cls_, strict=True)
    open_keys = sorted({(w, key) for w, key, cls in rows if cls is None})
    effects: dict = {}
    moved: dict = {}
    records: dict = {}
    if open_keys:
        _open(con, open_keys)
        effects = effects_of(con, table, "open_keys")
        moved = shifted(con, table, width_ms, "open_keys")
        records = cell_records(con, table, "open_keys")
    cells, pending = [], 0
    for w, key, metric, lo, hi, got, cls, n, x in zip(
        w_, key_, metric_, lo_, hi_, got_, cls_, n_, examples, strict=True
    ):
        if cls is not None:  # most cells: one whole class
            causes = [{"cause": cls, "count": n, "examples": x}]
        else:
            causes = _open_causes(
                effects.get((w, key, metric), {}),
                _target(lo, hi, got),
                tolerance.allowed(hi),
                moved.get((w, key)),
                records.get((w, key), (0, [])),
            )
        if all(c["cause"] == "unreleased" for c in causes):
            pending += 1  # only a delayed batch not released yet: no consumer can have it
            continue
        cells.append(_cell(w, key, metric, lo, hi, got, causes))
    return cells, pending


def by_cause(cells: list[dict]) -> dict[str, int]:
    """Wrong cells per cause (a cell with two causes counts under each)."""
    out = dict.fromkeys(CAUSES, 0)
    for cell in cells:
        for cause in {c["cause"] for c in cell["causes"]}:
            out[cause] = out.get(cause, 0) + 1
    return out


def negative(cause: str) -> bool:
    return cause in NEGATIVE
