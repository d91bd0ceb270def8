"""One typo in the config file locks nobody out: store commands run on the last applied config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fakeredis
import pytest
import yaml
from click.testing import CliRunner
from fastapi.testclient import TestClient

from emugen.cli import main
from emugen.db.session import engine_for, init_db, read_session, write_session
from emugen.fleet import worker
from emugen.fleet.applied import applied_settings, lenient_urls, record_applied
from emugen.fleet.control import is_paused, record_reload
from emugen.pipeline.runner import run_pipeline
from emugen.settings import load_settings
from emugen.vocabulary import Mode
from emugen.web.app import create_app
from emugen.web.probe import BrokerProbe
from tests.fleet_helpers import write_config

REPO = Path(__file__).resolve().parent.parent


class Fleet:
    """A config file and its SQLite store, with one config applied as beat would record it."""

    def __init__(self, folder: Path) -> None:
        self.url = f"sqlite:///{folder / 'store.db'}"
        self.config = write_config(
            folder / "emugen.yaml", self.url, broker_url="redis://:s3cret@127.0.0.1:1/0"
        )
        self.settings = load_settings(self.config, env=False)
        self.engine = engine_for(self.url)
        init_db(self.engine)
        run_pipeline(self.engine, self.settings, 1)
        with write_session(self.engine) as session:
            record_reload(
                session, str(self.config), fingerprint=self.settings.fingerprint(), mode="emulated"
            )
            record_applied(session, self.settings)

    def break_line(self, old: str, new: str) -> None:
        text = self.config.read_text()
        assert old in text
        self.config.write_text(text.replace(old, new, 1))


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fleet:
    for var in ("EMUGEN_CONFIG", "EMUGEN_HOME", "EMUGEN_DATABASE_URL", "EMUGEN_BROKER_URL"):
        monkeypatch.delenv(var, raising=False)
    return Fleet(tmp_path)


def _run(fleet: Fleet, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [*args, "--config", str(fleet.config)])
    return result.exit_code, result.stdout, result.stderr


def test_the_applied_config_round_trips_through_the_store_without_its_urls(fleet) -> None:
    with read_session(fleet.engine) as session:
        back = applied_settings(session, "sqlite:///elsewhere.db", "memory://")
    assert back is not None and back.fingerprint() == fleet.settings.fingerprint()
    assert back.database_url == "sqlite:///elsewhere.db"
    with read_session(fleet.engine) as session:
        from emugen.db.models import ControlState

        assert "s3cret" not in session.get(ControlState, "applied_config").value


def test_status_pause_resume_and_clean_work_while_the_file_is_invalid(fleet) -> None:
    fleet.break_line("seed: 7", "seed: seven")
    code, out, err = _run(fleet, "status")
    assert code == 0, err
    assert "batches" in out.lower()
    assert "is invalid (seed: got 'seven'" in err and "the fleet keeps its last good config" in err
    assert "last applied config (mode emulated" in err
    assert _run(fleet, "pause")[:2] == (0, "paused\n")
    with read_session(fleet.engine) as session:
        assert is_paused(session)
    code, out, err = _run(fleet, "clean", "--yes")
    assert code == 0 and "removed" in out, err
    assert "s3cret" not in out + err
    assert _run(fleet, "resume")[:2] == (0, "resumed\n")


def test_the_store_is_found_from_the_files_own_line_when_the_yaml_is_broken(fleet) -> None:
    fleet.break_line("seed: 7", "seed: [7")
    urls, origin = lenient_urls(fleet.config)
    assert urls["database_url"] == fleet.url and origin == "the file"
    code, _, err = _run(fleet, "pause")
    assert code == 0 and "not valid YAML" in err


def test_the_environment_url_wins_over_the_broken_file(fleet, monkeypatch) -> None:
    fleet.break_line("seed: 7", "seed: seven")
    monkeypatch.setenv("EMUGEN_DATABASE_URL", "sqlite:///from-env.db")
    urls, origin = lenient_urls(fleet.config)
    assert urls["database_url"] == "sqlite:///from-env.db" and origin == "$EMUGEN_DATABASE_URL"


def test_mode_repairs_a_broken_mode_line(fleet) -> None:
    fleet.break_line("mode: emulated", "mode: emulatd")
    code, out, err = _run(fleet, "mode", "production")
    assert code == 0, err
    assert "mode line repaired -> production" in out
    assert load_settings(fleet.config, env=False).mode is Mode.production


def test_mode_leaves_a_file_broken_elsewhere_alone_and_says_why(fleet) -> None:
    fleet.break_line("mode: emulated", "mode: emulatd")
    fleet.break_line("seed: 7", "seed: seven")
    before = fleet.config.read_text()
    code, _, err = _run(fleet, "mode", "production")
    assert code == 2 and "seed: got 'seven'" in err
    assert fleet.config.read_text() == before


def _client(fleet: Fleet) -> TestClient:
    probe = BrokerProbe(
        fleet.settings.broker_url,
        client=fakeredis.FakeRedis(),
        pinger=lambda: {"w@h": {"ok": "pong"}},
    )
    app = create_app(fleet.config, probe=probe, environ={})
    return TestClient(app, base_url="http://127.0.0.1:8000")


def test_the_dashboards_mode_button_repairs_a_broken_mode_line(fleet) -> None:
    with _client(fleet) as client:
        fleet.break_line("mode: emulated", "mode: emulatd")
        response = client.post("/api/mode", json={"mode": "production"})
    assert response.status_code == 200, response.text
    assert response.json()["before"] is None and response.json()["after"] == "production"
    assert yaml.safe_load(fleet.config.read_text())["mode"] == "production"


def test_health_reports_the_mode_of_the_last_accepted_reload(fleet) -> None:
    with write_session(fleet.engine) as session:
        record_reload(session, str(fleet.config), problems=["seed: got 'seven'"])
    with _client(fleet) as client:
        health = client.get("/api/health").json()
    assert health["applied_mode"] == "emulated"


def test_a_worker_task_runs_on_the_last_applied_config_while_the_file_is_invalid(
    fleet, monkeypatch
) -> None:
    fleet.break_line("seed: 7", "seed: seven")
    settings = worker.configure(fleet.config).settings()
    assert settings.fingerprint() == fleet.settings.fingerprint()
    assert settings.database_url == fleet.url


def test_the_celery_app_loads_with_an_invalid_file_and_warns(fleet) -> None:
    fleet.break_line("seed: 7", "seed: seven")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMUGEN_")}
    env["EMUGEN_CONFIG"] = str(fleet.config)
    done = subprocess.run(
        [sys.executable, "-c", "from emugen.celery import app; print(app.conf.broker_url)"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "redis://:s3cret@127.0.0.1:1/0" in done.stdout  # the broker the file names
    assert "seed: got 'seven'" in done.stderr and "last applied config" in done.stderr


def test_the_dashboard_starts_on_the_last_applied_config_and_its_mode_button_repairs(fleet) -> None:
    fleet.break_line("mode: emulated", "mode: emulatd")
    with _client(fleet) as client:
        health = client.get("/api/health")
        repaired = client.post("/api/mode", json={"mode": "emulated"})
        after = client.get("/api/health").json()
    assert health.status_code == 200
    assert health.json()["config"]["valid"] is False
    assert "mode: got 'emulatd'" in " ".join(health.json()["config"]["problems"])
    assert health.json()["applied_mode"] == "emulated"
    assert repaired.status_code == 200 and repaired.json()["changed"] is True
    assert after["config"]["valid"] is True
