"""Pause, resume and clean: state in the database, clean only while paused, says what it did."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from emugen.cli import main
from emugen.db.models import BatchRow, BronzeRecord, SilverEvent
from emugen.db.session import read_session, write_session
from emugen.errors import NotPaused
from emugen.fleet.control import clean, is_paused, record_skip, set_paused
from emugen.pipeline.runner import run_pipeline
from tests.conftest import make_settings
from tests.fleet_helpers import write_config


def test_pausing_twice_changes_the_flag_once_and_it_survives_new_sessions(engine):
    with write_session(engine) as session:
        assert set_paused(session, True) is True
        assert set_paused(session, True) is False
    with read_session(engine) as session:
        assert is_paused(session)


def test_clean_refuses_while_running_and_keeps_every_row(engine):
    run_pipeline(engine, make_settings(), 2)
    with pytest.raises(NotPaused, match="emugen pause"), write_session(engine) as session:
        clean(session)
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(BatchRow)) == 4


def test_clean_while_paused_wipes_layers_truth_and_skips_and_counts_them(engine):
    run_pipeline(engine, make_settings(), 2)
    with write_session(engine) as session:
        set_paused(session, True)
        record_skip(session, "events", datetime.now(UTC), "paused", "test")
    with read_session(engine) as session:
        bronze = session.scalar(select(func.count()).select_from(BronzeRecord))
    with write_session(engine) as session:
        cleaned = clean(session)
    assert cleaned.removed["batches"] == 4 and cleaned.removed["bronze_records"] == bronze
    assert cleaned.removed["skipped_ticks"] == 1
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(SilverEvent)) == 0
        assert is_paused(session)  # clean does not resume


def test_the_cli_pauses_refuses_to_clean_a_running_fleet_and_switches_mode(tmp_path):
    config = write_config(tmp_path / "c.yaml", f"sqlite:///{tmp_path / 'db.sqlite'}")
    runner = CliRunner()
    refused = runner.invoke(main, ["clean", "--yes", "--config", str(config)])
    assert refused.exit_code == 3 and "run `emugen pause` first" in refused.output
    assert runner.invoke(main, ["pause", "--config", str(config)]).output == "paused\n"
    done = runner.invoke(main, ["clean", "--yes", "--config", str(config)])
    assert done.exit_code == 0 and done.output.startswith("removed 0 gold_company_window")
    assert runner.invoke(main, ["resume", "--config", str(config)]).output == "resumed\n"
    switched = runner.invoke(main, ["mode", "production", "--config", str(config)])
    assert switched.exit_code == 0 and "emulated -> production" in switched.output
    assert "mode: production" in config.read_text()
