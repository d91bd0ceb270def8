"""The dashboard's panel and /metrics for an outside pipeline named in the config's `grade:`."""

from __future__ import annotations

from pathlib import Path

import fakeredis
import yaml
from click.testing import CliRunner
from fastapi.testclient import TestClient

from emugen.cli import main
from emugen.db.session import engine_for, init_db
from emugen.pipeline.runner import run_pipeline
from emugen.settings import load_settings
from emugen.web.app import create_app
from emugen.web.probe import BrokerProbe
from tests.fleet_helpers import write_config

PONG = {"worker1@host": {"ok": "pong"}}


def _store(tmp_path: Path, grade: dict | None) -> tuple[Path, Path]:
    """A store with 3 rounds at a 30 % defect rate, its silver and quarantine exported."""
    config = write_config(
        tmp_path / "emugen.yaml",
        f"sqlite:///{tmp_path / 'store.db'}",
        broker_url="redis://127.0.0.1:6379/0",
    )
    engine = engine_for(load_settings(config, env=False).database_url)
    init_db(engine)
    run_pipeline(engine, load_settings(config, env=False), 3)
    out = tmp_path / "out"
    for stream in ("companies", "events"):
        CliRunner().invoke(
            main,
            [
                "export",
                "silver",
                "--stream",
                stream,
                "--out",
                str(out / f"silver_{stream}.parquet"),
                "--config",
                str(config),
            ],
        )
    CliRunner().invoke(
        main,
        ["export", "quarantine", "--out", str(out / "quarantine.parquet"), "--config", str(config)],
    )
    if grade is not None:
        data = yaml.safe_load(config.read_text())
        data["grade"] = {k: v.format(out=out) for k, v in grade.items()}
        config.write_text(yaml.safe_dump(data))
    return config, out


def _client(config: Path) -> TestClient:
    settings = load_settings(config, env=False)
    probe = BrokerProbe(settings.broker_url, client=fakeredis.FakeRedis(), pinger=lambda: PONG)
    return TestClient(create_app(config, probe=probe, environ={}), base_url="http://127.0.0.1")


def test_a_configured_pipeline_gets_a_dashboard_panel_and_metrics(tmp_path):
    config, _ = _store(
        tmp_path, {"kept": "{out}/silver_*.parquet", "rejected": "{out}/quarantine.parquet"}
    )
    with _client(config) as client:
        x = client.get("/api/snapshot").json()["external"]
        assert x["ok"] and x["recall"] == 1.0 and x["precision"] == 1.0
        events = x["streams"]["events"]
        assert events["pending_batches"] == 0 and events["lag_s"] == 0
        assert events["by_defect"] and all(d["recall"] == 1.0 for d in events["by_defect"].values())
        page = client.get("/").text
        assert 'id="external"' in page and "External pipeline" in page
        metrics = client.get("/metrics").text
        assert 'emugen_external_precision{stream="events"} 1.0' in metrics
        assert 'emugen_external_pending_batches{stream="companies"} 0.0' in metrics
        assert "emugen_external_recall{" in metrics


def test_a_pipeline_behind_the_store_shows_pending_batches_and_its_lag(tmp_path):
    config, out = _store(
        tmp_path, {"kept": "{out}/silver_*.parquet", "rejected": "{out}/quarantine.parquet"}
    )
    settings = load_settings(config, env=False)
    run_pipeline(engine_for(settings.database_url), settings, 2)  # lands after the export
    with _client(config) as client:
        x = client.get("/api/snapshot").json()["external"]
    assert x["streams"]["events"]["pending_batches"] == 2
    assert x["streams"]["events"]["lag_s"] > 0
    assert x["recall"] == 1.0  # pending batches are not misses


def test_a_missing_output_is_reported_on_the_panel_not_raised(tmp_path):
    config, _ = _store(tmp_path, {"kept": "{out}/nowhere/*.parquet"})
    with _client(config) as client:
        x = client.get("/api/snapshot").json()["external"]
        assert not x["ok"] and "no such file" in x["error"]
        assert "emugen_external_grade_ok 0.0" in client.get("/metrics").text


def test_without_a_grade_section_there_is_no_panel(tmp_path):
    config, _ = _store(tmp_path, None)
    with _client(config) as client:
        assert client.get("/api/snapshot").json()["external"] is None
        assert "emugen_external" not in client.get("/metrics").text


def test_a_configured_glob_through_symlink_loops_is_graded_once_by_id_per_stream(tmp_path):
    """Two symlink loops under the output used to keep `emugen web` walking them forever; one
    glob over both silvers graded by id used to read every row as an event."""
    import threading

    from emugen.grade.live import LiveGrade

    config, out = _store(tmp_path, {"kept": "{out}/**/silver_*.parquet", "match": "id"})
    (out / "sub").mkdir()
    (out / "sub" / "up").symlink_to(out, target_is_directory=True)
    (out / "sub" / "self").symlink_to(out / "sub", target_is_directory=True)
    settings = load_settings(config, env=False)
    live = LiveGrade(lambda: settings.grade, engine_for(settings.database_url))
    panels: list = []
    # a daemon thread: if the walk never ends, the test fails instead of hanging the run
    worker = threading.Thread(target=lambda: panels.append(live.read()), daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert panels, "the live grade never finished"
    x = panels[0]
    assert x["ok"], x["error"]
    assert x["match"] == "id"
    # every clean company and event found in its own stream, none pending, none read twice
    assert {
        s: (v["pending_batches"], v["lost_clean"], v["false_alarms"])
        for s, v in x["streams"].items()
    } == {"companies": (0, 0, 0), "events": (0, 0, 0)}
