"""examples/duckdb: the SQL medallion on a landing zone built from a real store, graded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import Engine, select

from emugen.cli import main
from emugen.db.models import InjectedDefect
from emugen.db.session import init_db, make_engine
from emugen.pipeline.runner import run_pipeline
from tests.conftest import SIMULATED, make_settings

EXAMPLE = Path(__file__).parent.parent / "examples" / "duckdb" / "medallion.py"
DIRTY = {"quality": {"rate": 0.2}}


@pytest.fixture(scope="module")
def landed(tmp_path_factory) -> tuple[Path, Path, Engine]:
    tmp = tmp_path_factory.mktemp("duckdb_example")
    url = f"sqlite:///{tmp / 'store.db'}"
    engine = make_engine(url)
    init_db(engine)
    # the real landing zone: the in-process runner lands each batch right after bronze
    landing = {"enabled": True, "root": str(tmp / "landing"), "format": "jsonl"}
    run_pipeline(engine, make_settings(companies=DIRTY, events=DIRTY, landing=landing), 4, size=150)
    config = tmp / "emugen.yaml"
    config.write_text(yaml.safe_dump({"database_url": url, "clock": SIMULATED}))
    return tmp, config, engine


def _medallion(tmp: Path, out: str, *flags: str) -> Path:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), str(tmp / "landing"), str(tmp / out), *flags],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    return tmp / out


def _grade(config: Path, out: Path) -> tuple[int, dict]:
    result = CliRunner().invoke(
        main,
        [
            "grade",
            "--kept",
            str(out / "silver_*.parquet"),
            "--rejected",
            str(out / "quarantine.parquet"),
            "--config",
            str(config),
            "--json",
            "--examples",
            "1000",
        ],
    )
    return result.exit_code, json.loads(result.output)


def test_the_duckdb_medallion_catches_every_injected_defect(landed):
    tmp, config, _ = landed
    code, grade = _grade(config, _medallion(tmp, "full"))
    assert grade["match"] == "lineage"
    assert (grade["recall"], grade["precision"]) == (1.0, 1.0), grade["examples"][:5]
    assert code == 0
    assert all(s["lost_clean"] == 0 and s["extra"] == 0 for s in grade["streams"].values())


def test_the_weakened_medallion_lets_exactly_the_invalid_enums_escape(landed):
    tmp, config, engine = landed
    code, grade = _grade(config, _medallion(tmp, "weak", "--weak"))
    with engine.connect() as conn:
        injected = {
            tuple(r)
            for r in conn.execute(
                select(InjectedDefect.batch_id, InjectedDefect.row_no).where(
                    InjectedDefect.defect == "invalid_enum"
                )
            )
        }
    escaped = {(e["batch_id"], e["row_no"]) for e in grade["examples"] if e["miss"] == "escaped"}
    assert injected and escaped == injected
    assert {e["defect"] for e in grade["examples"]} == {"invalid_enum"}
    assert code == 1 and grade["precision"] == 1.0


def test_the_duckdb_medallions_gold_passes_exact_for_both_tables(landed):
    tmp, config, _ = landed
    out = _medallion(tmp, "answer")
    for table in ("gold_company_window", "gold_region_window"):
        result = CliRunner().invoke(
            main,
            ["grade", "--gold", str(out / f"{table}.parquet"), "--config", str(config), "--json"],
        )
        assert result.exit_code == 0, result.output
        gold = json.loads(result.output)["gold"]
        assert gold["wrong"] == 0 and gold["cells"] > 10, gold["wrong_cells"][:3]
