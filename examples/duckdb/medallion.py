"""A reference consumer of emugen's landing zone: bronze -> silver + quarantine -> gold in DuckDB.

    python examples/duckdb/medallion.py LANDING_ROOT OUT_DIR [--weak]

Reads `<root>/<stream>/date=*/hour=*/<batch_id>.jsonl` (raw lines, malformed ones included)
and `<root>/_manifests/<stream>/<batch_id>.json` (each batch's interval), validates with SQL
only, and writes silver_companies / silver_events / quarantine (with reasons) / gold_* as
Parquet into OUT_DIR. `--weak` drops the enum checks (event_type, region), so invalid enums
escape into silver: `emugen grade` must then name exactly those records.

Grade it with:
    emugen grade --kept 'OUT_DIR/silver_*.parquet' --rejected OUT_DIR/quarantine.parquet
"""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

import duckdb

HERE = Path(__file__).parent

# The data contract as (field, kind, nullable, allowed values), in emugen's check order.
UUID = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
STAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"
CONTRACT = {
    "companies": [
        ("company_id", "uuid", False, None),
        ("company_name", "text", False, None),
        ("region", "enum", False, ("US", "EU", "SA", "AUS")),
        ("active", "bool", False, None),
        ("onboarded_at", "timestamp", False, None),
        ("drivers_count", "count", False, None),
        ("trucks_count", "count", False, None),
    ],
    "events": [
        ("event_id", "uuid", False, None),
        ("company_id", "uuid", False, None),
        ("driver_id", "uuid", False, None),
        ("truck_id", "uuid", False, None),
        ("event_type", "enum", False, ("start_driving", "stopped_driving", "delivered")),
        ("event_timestamp", "timestamp", False, None),
        ("location", "location", True, None),
    ],
}
TIME_FIELD = {"companies": "onboarded_at", "events": "event_timestamp"}
NUMBER = "('BIGINT', 'UBIGINT', 'DOUBLE')"


def _quote(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def field_checks(
    name: str, kind: str, nullable: bool, allowed: tuple | None, weak: bool
) -> list[tuple[str, str]]:
    """(condition, reason) pairs for one field, in the order the contract applies them."""
    t, v = f"json_type(j, '$.{name}')", f"json_extract_string(j, '$.{name}')"
    checks = [] if nullable else [(f"{t} = 'NULL'", "null_value")]
    if kind in ("uuid", "text", "enum", "timestamp"):
        checks += [
            (f"{t} <> 'VARCHAR'", "schema_mismatch"),
            (f"regexp_matches({v}, '^\\s*$')", "empty_string"),
        ]
        if kind == "uuid":
            checks.append((f"NOT regexp_matches({v}, '{UUID}')", "schema_mismatch"))
        if kind == "text":
            checks.append((f"length({v}) > 200", "out_of_range"))
        if kind == "enum" and not weak:  # the check --weak drops
            checks.append((f"NOT list_contains({_quote(allowed)}, {v})", "invalid_enum"))
        if kind == "timestamp":
            checks.append(
                (
                    f"NOT regexp_matches({v}, '{STAMP}') OR "
                    f"try_cast(replace({v}, 'Z', '+00:00') AS TIMESTAMPTZ) IS NULL",
                    "malformed_timestamp",
                )
            )
    elif kind == "bool":
        checks.append((f"{t} <> 'BOOLEAN'", "schema_mismatch"))
    elif kind == "count":
        checks += [
            (f"{t} NOT IN ('BIGINT', 'UBIGINT')", "schema_mismatch"),
            (f"NOT ({v}::HUGEINT BETWEEN 1 AND 100000)", "out_of_range"),
        ]
    else:  # location: null, or exactly {lat, lon} numbers on Earth
        lat, lon = f"json_extract(j, '$.{name}.lat')", f"json_extract(j, '$.{name}.lon')"
        checks += [
            (
                f"{t} <> 'NULL' AND ({t} <> 'OBJECT' OR list_sort(json_keys(j, '$.{name}')) "
                f"<> ['lat', 'lon'] OR json_type({lat}) NOT IN {NUMBER} "
                f"OR json_type({lon}) NOT IN {NUMBER})",
                "schema_mismatch",
            ),
            (
                f"{t} <> 'NULL' AND NOT ({lat}::DOUBLE BETWEEN -90 AND 90 "
                f"AND {lon}::DOUBLE BETWEEN -180 AND 180)",
                "out_of_range",
            ),
        ]
    return checks


def reason_sql(stream: str, weak: bool) -> str:
    """One CASE naming the first rule a record breaks (reason and field), or NULL when clean."""
    names = [f[0] for f in CONTRACT[stream]]
    # keys the contract does not know (the field contract version 2 adds aside)
    unknown = (
        f"list_filter(json_keys(j), lambda k: NOT list_contains({_quote(names)}, k) "
        "AND k IS DISTINCT FROM b.drift_field)"
    )
    when = [
        ("j IS NULL", "unparseable", "NULL"),
        (f"len({unknown}) > 0", "schema_mismatch", f"{unknown}[1]"),
    ]
    when += [(f"NOT list_contains(json_keys(j), '{n}')", "missing_field", f"'{n}'") for n in names]
    for name, kind, nullable, allowed in CONTRACT[stream]:
        when += [(c, r, f"'{name}'") for c, r in field_checks(name, kind, nullable, allowed, weak)]
    stamp = f"json_extract_string(j, '$.{TIME_FIELD[stream]}')::TIMESTAMPTZ"
    # a late record, up to the declared max_lateness before the interval, is valid data
    when.append(
        (
            f"NOT ({stamp} >= b.earliest AND {stamp} < b.interval_end)",
            "boundary_violation",
            f"'{TIME_FIELD[stream]}'",
        )
    )
    reason = " ".join(f"WHEN {c} THEN '{r}'" for c, r, _ in when)
    field = " ".join(f"WHEN {c} THEN {f}" for c, _, f in when)
    return f"CASE {reason} END AS reason, CASE {field} END AS field"


def run_sql(con: duckdb.DuckDBPyConnection, path: Path, params: dict) -> None:
    for statement in path.read_text().split(";"):
        body = "\n".join(
            line for line in statement.splitlines() if not line.lstrip().startswith("--")
        ).strip()
        if body:
            used = {k: v for k, v in params.items() if f"${k}" in body}
            con.execute(body, used)


def silver(con: duckdb.DuckDBPyConnection, weak: bool, per_file: bool = False) -> None:
    """Contract checks, then the company reference, then first-occurrence de-duplication
    (across every landed file; `per_file`, the naive consumer's bug: within each file only)."""
    scope = "batch_id, " if per_file else ""
    for stream in ("companies", "events"):
        con.execute(f"""
            CREATE OR REPLACE TABLE checked_{stream} AS
            WITH parsed AS (
                SELECT batch_id, row_no, payload,
                       CASE WHEN try(json_type(payload)) = 'OBJECT' THEN payload::JSON END AS j
                FROM bronze WHERE stream = '{stream}')
            SELECT p.batch_id, p.row_no, p.payload, p.j, {reason_sql(stream, weak)}
            FROM parsed p LEFT JOIN batches b USING (batch_id)
        """)
        key = "company_id" if stream == "companies" else "event_id"
        orphan = (
            ""
            if stream == "companies"
            else "WHEN json_extract_string(j, '$.company_id') NOT IN "
            "(SELECT company_id FROM silver_companies) THEN 'orphan_reference' "
        )
        con.execute(f"""
            CREATE OR REPLACE TABLE decided_{stream} AS
            SELECT batch_id, row_no, payload, j,
                   CASE WHEN reason IS NOT NULL THEN reason {orphan}
                        WHEN row_number() OVER (PARTITION BY {scope}reason IS NULL,
                             json_extract_string(j, '$.{key}') ORDER BY batch_id, row_no) > 1
                        THEN 'duplicate' END AS reason,
                   CASE WHEN reason IS NOT NULL THEN field
                        {
            ""
            if not orphan
            else "WHEN json_extract_string(j, '$.company_id') NOT "
            "IN (SELECT company_id FROM silver_companies) THEN 'company_id'"
        }
                        ELSE '{key}' END AS field
            FROM checked_{stream}
        """)
        columns = ", ".join(
            f"json_extract_string(j, '$.{n}')"
            + {"count": "::BIGINT", "bool": "::BOOLEAN", "timestamp": "::TIMESTAMPTZ"}.get(k, "")
            + f" AS {n}"
            for n, k, _, _ in CONTRACT[stream]
            if k != "location"
        )
        if stream == "events":
            columns += (
                ", json_extract(j, '$.location.lat')::DOUBLE AS lat, "
                "json_extract(j, '$.location.lon')::DOUBLE AS lon"
            )
        con.execute(
            f"CREATE OR REPLACE TABLE silver_{stream} AS SELECT {columns}, batch_id, "
            f"row_no FROM decided_{stream} WHERE reason IS NULL ORDER BY batch_id, row_no"
        )
    con.execute("""
        CREATE OR REPLACE TABLE quarantine AS
        SELECT batch_id, row_no, 'companies' AS stream, reason, field, payload
        FROM decided_companies WHERE reason IS NOT NULL
        UNION ALL
        SELECT batch_id, row_no, 'events', reason, field, payload
        FROM decided_events WHERE reason IS NOT NULL
        ORDER BY batch_id, row_no
    """)


def medallion(root: Path, out: Path, weak: bool = False, per_file: bool = False) -> dict[str, int]:
    """Run every layer; write the tables as Parquet into `out`; their row counts."""
    jsonl = sorted(glob.glob(str(root / "*" / "date=*" / "hour=*" / "*.jsonl")))
    manifests = sorted(glob.glob(str(root / "_manifests" / "*" / "*.json")))
    if not jsonl or not manifests:
        raise SystemExit(f"{root}: no landed batches (or no manifests) to read")
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    run_sql(con, HERE / "bronze.sql", {"jsonl_files": jsonl, "manifest_files": manifests})
    silver(con, weak, per_file)
    run_sql(con, HERE / "gold.sql", {})
    counts = {}
    for table in (
        "silver_companies",
        "silver_events",
        "quarantine",
        "gold_company_window",
        "gold_region_window",
    ):
        con.execute(f"COPY {table} TO '{out / table}.parquet' (FORMAT parquet)")
        counts[table] = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    con.close()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="the landing zone's root folder")
    parser.add_argument("out", type=Path, help="where the Parquet tables go")
    parser.add_argument(
        "--weak", action="store_true", help="drop the enum checks: invalid enums escape into silver"
    )
    args = parser.parse_args(argv)
    for table, n in medallion(args.root, args.out, args.weak).items():
        print(f"{table}: {n} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
