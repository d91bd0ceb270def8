"""The DuckDB example's bronze layer: one row per landed line, and none for an empty file."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import duckdb

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "duckdb"


def _medallion():  # noqa: ANN202 - the example is a script, not a package
    spec = importlib.util.spec_from_file_location("medallion_example", EXAMPLE / "medallion.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _zone(root: Path, files: dict[str, str]) -> tuple[list[str], list[str]]:
    """A landing zone of JSON Lines files (batch id -> content), each with its manifest."""
    data, manifests = [], []
    for batch_id, content in files.items():
        stream = batch_id.split("-")[0]
        path = root / stream / "date=2026-01-01" / "hour=00" / f"{batch_id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        manifest = root / "_manifests" / stream / f"{batch_id}.json"
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(
            json.dumps(
                {
                    "batch_id": batch_id,
                    "stream": stream,
                    "interval_start": "2026-01-01T00:00:00Z",
                    "interval_end": "2026-01-01T00:01:00Z",
                    "spec": {},
                }
            )
        )
        data.append(str(path))
        manifests.append(str(manifest))
    return data, manifests


def _bronze(root: Path, files: dict[str, str]) -> list[tuple]:
    data, manifests = _zone(root, files)
    con = duckdb.connect()
    _medallion().run_sql(
        con, EXAMPLE / "bronze.sql", {"jsonl_files": data, "manifest_files": manifests}
    )
    return con.execute("SELECT batch_id, row_no, payload FROM bronze ORDER BY ALL").fetchall()


def test_an_empty_batch_file_yields_no_bronze_rows(tmp_path):
    assert _bronze(tmp_path, {"events-000000001": ""}) == []


def test_an_empty_batch_file_beside_others_adds_nothing_to_theirs(tmp_path):
    rows = _bronze(tmp_path, {"events-000000001": "", "events-000000002": '{"a": 1}\n{"a": 2}\n'})
    assert rows == [("events-000000002", 0, '{"a": 1}'), ("events-000000002", 1, '{"a": 2}')]


def test_a_last_line_without_newline_is_still_a_row(tmp_path):
    rows = _bronze(tmp_path, {"events-000000003": '{"a": 1}\n{"a": 2}'})
    assert [r[1] for r in rows] == [0, 1]
