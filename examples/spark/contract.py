"""emugen's data contract re-written as Spark SQL: one reason (and field) per rejected raw record.

This is a user's pipeline, so it does not import emugen: it re-implements the rules of
emugen/contract.py from their documentation. Raw JSON text is parsed with `try_parse_json` into a
VARIANT, because the JSON reader's string columns would silently turn `123` into "123" and a
contract must tell a number from a string. Checks run in emugen's order: unparseable, unknown
field, missing field, then each field in table order (null, type, emptiness, format, enum,
range), then the batch interval. Orphans and duplicates need state, so job.py decides them.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\z"
STAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z\z"
# "For parsing, the acceptable fraction length can be [1, the number of contiguous S]"
STAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ss[.SSSSSS]'Z'"
BLANK = r"(?U)^\s*\z"  # Python's str.strip() strips Unicode whitespace too
NUMBER = r"^(BIGINT|INT|SMALLINT|TINYINT|DOUBLE|FLOAT|DECIMAL.*)$"
MAX_TEXT, MAX_COUNT = 200, 100_000
REGIONS = ("US", "EU", "SA", "AUS")
EVENT_TYPES = ("start_driving", "stopped_driving", "delivered")

# (field, kind, allowed values) in emugen's table order; location is the only nullable field
COMPANY_FIELDS = (
    ("company_id", "uuid", ()),
    ("company_name", "text", ()),
    ("region", "enum", REGIONS),
    ("active", "bool", ()),
    ("onboarded_at", "timestamp", ()),
    ("drivers_count", "count", ()),
    ("trucks_count", "count", ()),
)
EVENT_FIELDS = (
    ("event_id", "uuid", ()),
    ("company_id", "uuid", ()),
    ("driver_id", "uuid", ()),
    ("truck_id", "uuid", ()),
    ("event_type", "enum", EVENT_TYPES),
    ("event_timestamp", "timestamp", ()),
    ("location", "location", ()),
)
FIELDS = {"companies": COMPANY_FIELDS, "events": EVENT_FIELDS}
TIME_FIELD = {"companies": "onboarded_at", "events": "event_timestamp"}


def _regex(pattern: str) -> str:
    """A regex as a SQL string literal: SQL unescapes backslashes once, so double them."""
    return "'" + pattern.replace("\\", "\\\\") + "'"


def _sql_list(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _type(path: str) -> str:
    """The JSON type at `path`: STRING, BIGINT, DECIMAL(p,s), BOOLEAN, OBJECT<…>, VOID (null)…"""
    return f"schema_of_variant(variant_get(v, '{path}', 'variant'))"


def _text(path: str) -> str:
    return f"try_variant_get(v, '{path}', 'string')"


def field_checks(name: str, kind: str, allowed: tuple[str, ...], weaken: bool) -> list[tuple]:
    """(SQL condition, reason) pairs for one present field, first broken rule first."""
    path, t = f"$.{name}", _type(f"$.{name}")
    s = _text(path)
    checks: list[tuple[str, str]] = []
    if kind != "location":
        checks.append((f"{t} = 'VOID'", "null_value"))
    if kind in ("uuid", "text", "enum", "timestamp"):
        checks += [
            (f"{t} != 'STRING'", "schema_mismatch"),
            (f"{s} rlike {_regex(BLANK)}", "empty_string"),
        ]
        if kind == "uuid":
            checks.append((f"NOT {s} rlike {_regex(UUID)}", "schema_mismatch"))
        if kind == "text":
            checks.append((f"char_length({s}) > {MAX_TEXT}", "out_of_range"))
        if kind == "enum" and not weaken:  # --weaken: the check a hurried pipeline forgets
            checks.append((f"{s} NOT IN ({_sql_list(allowed)})", "invalid_enum"))
        if kind == "timestamp":
            checks += [
                (f"NOT {s} rlike {_regex(STAMP)}", "malformed_timestamp"),
                (f'try_to_timestamp({s}, "{STAMP_FORMAT}") IS NULL', "malformed_timestamp"),
            ]
    elif kind == "bool":
        checks.append((f"{t} != 'BOOLEAN'", "schema_mismatch"))
    elif kind == "count":
        checks += [
            (f"{t} != 'BIGINT'", "schema_mismatch"),
            (
                f"NOT try_variant_get(v, '{path}', 'bigint') BETWEEN 1 AND {MAX_COUNT}",
                "out_of_range",
            ),
        ]
    else:  # location: null is valid data (a GPS gap), else exactly {lat, lon} on Earth
        lat, lon = f"{path}.lat", f"{path}.lon"
        keys = f"json_object_keys(to_json(variant_get(v, '{path}', 'variant')))"
        checks += [
            (
                f"{t} != 'VOID' AND ({t} NOT LIKE 'OBJECT<%' "
                f"OR array_sort({keys}) != array('lat', 'lon'))",
                "schema_mismatch",
            ),
            (
                f"{t} != 'VOID' AND NOT ({_type(lat)} rlike {_regex(NUMBER)} "
                f"AND {_type(lon)} rlike {_regex(NUMBER)})",
                "schema_mismatch",
            ),
            (
                f"{t} != 'VOID' AND NOT (try_variant_get(v, '{lat}', 'double') BETWEEN -90 AND 90 "
                f"AND try_variant_get(v, '{lon}', 'double') BETWEEN -180 AND 180)",
                "out_of_range",
            ),
        ]
    return checks


def rejection(stream: str, weaken: bool) -> Column:
    """A struct (reason, field) for the first rule a record breaks, NULL for a clean record.

    Needs columns `v` (the parsed variant), `keys` (top-level keys in document order),
    `earliest`/`interval_end` (the batch's interval from its manifest, its start less the
    declared lateness) and `drift_field` (the field contract version 2 adds, or NULL).
    """
    fields = FIELDS[stream]
    names = [f[0] for f in fields]
    time = TIME_FIELD[stream]
    # a key the contract does not know (the drift field of contract version 2 aside)
    unknown = f"filter(keys, k -> k NOT IN ({_sql_list(names)}) AND NOT k <=> drift_field)"
    whens = [
        ("v IS NULL OR schema_of_variant(v) NOT LIKE 'OBJECT<%'", "'unparseable'", "NULL"),
        (f"size({unknown}) > 0", "'schema_mismatch'", f"{unknown}[0]"),
        (
            f"size(filter(array({_sql_list(names)}), n -> NOT array_contains(keys, n))) > 0",
            "'missing_field'",
            f"filter(array({_sql_list(names)}), n -> NOT array_contains(keys, n))[0]",
        ),
    ]
    for name, kind, allowed in fields:
        whens += [
            (cond, f"'{reason}'", f"'{name}'")
            for cond, reason in field_checks(name, kind, allowed, weaken)
        ]
    stamp = f'try_to_timestamp({_text("$." + time)}, "{STAMP_FORMAT}")'
    # a late record (up to the declared max_lateness before the interval) is valid data
    whens.append(
        (f"{stamp} < earliest OR {stamp} >= interval_end", "'boundary_violation'", f"'{time}'")
    )
    cases = " ".join(
        f"WHEN {cond} THEN named_struct('reason', {reason}, 'field', {field})"
        for cond, reason, field in whens
    )
    return F.expr(f"CASE {cases} END")


def _stamp(name: str) -> Column:
    return F.expr(f'try_to_timestamp({_text("$." + name)}, "{STAMP_FORMAT}")')


def checked(rows: DataFrame, stream: str, weaken: bool) -> DataFrame:
    """Raw rows (batch_id, row_no, payload, earliest, interval_end, drift_field) with
    `rejected` and the typed fields."""
    parsed = rows.withColumn("v", F.expr("try_parse_json(payload)")).withColumn(
        "keys", F.expr("json_object_keys(payload)")
    )
    typed = [
        F.expr(_text(f"$.{name}")).alias(name)
        for name, kind, _ in FIELDS[stream]
        if kind in ("uuid", "text", "enum")
    ]
    if stream == "companies":
        typed += [
            F.expr("try_variant_get(v, '$.active', 'boolean')").alias("active"),
            _stamp("onboarded_at").alias("onboarded_at"),
            F.expr("try_variant_get(v, '$.drivers_count', 'int')").alias("drivers_count"),
            F.expr("try_variant_get(v, '$.trucks_count', 'int')").alias("trucks_count"),
        ]
    else:
        typed += [
            _stamp("event_timestamp").alias("event_timestamp"),
            F.expr("try_variant_get(v, '$.location.lat', 'double')").alias("lat"),
            F.expr("try_variant_get(v, '$.location.lon', 'double')").alias("lon"),
        ]
    return parsed.select(
        "batch_id", "row_no", "payload", rejection(stream, weaken).alias("rejected"), *typed
    )
