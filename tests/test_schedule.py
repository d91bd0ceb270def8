"""Beat's entries come from the config by a pure function; the watcher and mode rewrite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from emugen.errors import ConfigError
from emugen.fleet.entries import entries_for, tick_time
from emugen.fleet.reload import ConfigWatcher, set_mode
from tests.conftest import make_settings
from tests.fleet_helpers import write_config


def test_emulated_entries_tick_each_stream_at_its_interval_and_expire_after_one():
    settings = make_settings(
        companies={"emulated": {"interval": 3, "min_batch_size": 1, "max_batch_size": 1}}
    )
    entries = entries_for(settings)
    assert set(entries) == {"generate-companies", "generate-events", "reap", "prune"}
    companies = entries["generate-companies"]
    assert companies["schedule"].run_every == timedelta(seconds=3)
    assert companies["args"] == ("companies",) and companies["kwargs"] == {"mode": "emulated"}
    assert companies["options"] == {"queue": "generate", "expires": 3.0}
    assert entries["generate-events"]["schedule"].run_every == timedelta(seconds=10)
    assert entries["reap"]["options"]["queue"] == "pipeline"


def test_production_entries_use_the_hourly_and_quarter_hourly_cadence():
    entries = entries_for(make_settings(mode="production"))
    assert entries["generate-companies"]["schedule"].run_every == timedelta(hours=1)
    assert entries["generate-events"]["schedule"].run_every == timedelta(minutes=15)
    assert entries["generate-events"]["kwargs"] == {"mode": "production"}


def test_tick_times_are_utc_milliseconds():
    at = tick_time(datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC))
    assert at.microsecond == 123000 and at.tzinfo is UTC


def test_the_watcher_reports_a_change_only_when_the_bytes_change(tmp_path):
    config = write_config(tmp_path / "c.yaml", "sqlite:///x.db", interval=2)
    watcher = ConfigWatcher(config, env=False)
    first = watcher.poll()
    assert first.accepted and watcher.poll() is None
    write_config(config, "sqlite:///x.db", interval=1)
    second = watcher.poll()
    assert second.accepted and second.settings.interval("events").total_seconds() == 1


def test_an_invalid_edit_is_rejected_with_its_field_and_the_running_config_stays(tmp_path):
    config = write_config(tmp_path / "c.yaml", "sqlite:///x.db", interval=2)
    watcher = ConfigWatcher(config, env=False)
    running = watcher.poll().settings
    config.write_text(config.read_text().replace("interval: 2", "interval: -5", 1))
    change = watcher.poll()
    assert not change.accepted
    assert any("companies.emulated.interval" in p for p in change.error.problems)
    assert watcher.settings is running


def test_a_deleted_file_is_a_rejection_not_a_crash(tmp_path):
    config = write_config(tmp_path / "c.yaml", "sqlite:///x.db")
    watcher = ConfigWatcher(config, env=False)
    watcher.poll()
    config.unlink()
    change = watcher.poll()
    assert not change.accepted and "cannot read the file" in str(change.error)
    assert watcher.poll() is None  # reported once, not every tick


def test_set_mode_rewrites_only_the_mode_line_and_keeps_comments(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("# my config\nmode: emulated   # which cadence\nseed: 3\n")
    assert set_mode("production", config) == ("emulated", "production")
    assert config.read_text() == "# my config\nmode: production   # which cadence\nseed: 3\n"
    assert set_mode("production", config) == ("production", "production")


def test_set_mode_refuses_an_unknown_mode_and_leaves_the_file_alone(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("mode: emulated\n")
    with pytest.raises(ConfigError, match="allowed: production, emulated"):
        set_mode("turbo", config)
    assert config.read_text() == "mode: emulated\n"


def test_set_mode_adds_the_key_to_a_file_without_one(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("seed: 1\n")
    set_mode("production", config)
    assert config.read_text() == "mode: production\nseed: 1\n"
