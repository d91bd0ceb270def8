"""The first-gold bench's judgement: an events batch with records in gold, read from the store."""

from __future__ import annotations

from pathlib import Path

from emugen.db.session import engine_for, init_db
from emugen.lab.firstgold import first_gold, format_first_gold
from emugen.pipeline.runner import run_pipeline
from tests.conftest import make_settings


def test_first_gold_waits_for_an_events_batch_with_records_in_gold(tmp_path: Path):
    store = tmp_path / "emugen.db"
    assert not first_gold(store)  # no store yet
    engine = engine_for(f"sqlite:///{store}")
    init_db(engine)
    assert not first_gold(store)  # tables, no batch
    run_pipeline(engine, make_settings(database_url=f"sqlite:///{store}"), 2)
    assert first_gold(store)


def test_the_report_says_which_target_was_missed():
    text = format_first_gold(
        {
            "cold_s": 35.0,
            "warm_s": None,
            "in_process_s": 2.0,
            "load": 1.0,
            "target_cold_s": 40.0,
            "target_warm_s": 10.0,
            "met": False,
        }
    )
    assert "warm (installed):      not within the limit" in text
    assert "target: NOT MET" in text
