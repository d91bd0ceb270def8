"""A reload never moves data: an emptied file or a new store URL leaves the fleet on its store,
and store commands under an invalid file open the store the fleet recorded, never a default."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from celery import Celery
from click.testing import CliRunner
from sqlalchemy import select

from emugen.cli import main
from emugen.db.models import BatchRow
from emugen.db.session import engine_for, read_session
from emugen.fleet import worker
from emugen.fleet.applied import store_record_path
from emugen.fleet.control import is_paused, last_reload
from emugen.fleet.schedule import EmugenScheduler
from emugen.pipeline.bronze import generate_and_land
from tests.fleet_helpers import write_config

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Fleet:
    """Beat's scheduler and a worker's runtime on one config file, driven as the fleet drives
    them: beat polls the file on each tick, the worker reads it before each batch."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.store = folder / "fleet.db"
        self.config = write_config(folder / "emugen.yaml", f"sqlite:///{self.store}", interval=60)
        self.beat = EmugenScheduler(app=Celery("reload-test", broker="memory://"))
        self.runtime = worker.configure(self.config)
        self.ticks = 0

    def tick(self) -> None:
        self.beat.tick()

    def land(self, count: int) -> None:
        for _ in range(count):
            settings = self.runtime.settings()
            at = T0 + timedelta(seconds=self.ticks)
            generate_and_land(self.runtime.engine(settings), settings, "events", at)
            self.ticks += 1

    def seqs(self) -> list[int]:
        with read_session(engine_for(f"sqlite:///{self.store}")) as session:
            return list(
                session.scalars(
                    select(BatchRow.seq).where(BatchRow.stream == "events").order_by(BatchRow.seq)
                )
            )

    def last_rejection(self) -> list[str]:
        with read_session(engine_for(f"sqlite:///{self.store}")) as session:
            row = last_reload(session, accepted=False)
        assert row is not None and row.problems is not None
        return yaml.safe_load(row.problems)


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fleet:
    for var in ("EMUGEN_HOME", "EMUGEN_DATABASE_URL", "EMUGEN_BROKER_URL", "EMUGEN_LANDING_ROOT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # where a default store (sqlite:///var/emugen.db) would appear
    monkeypatch.setenv("EMUGEN_CONFIG", str(tmp_path / "emugen.yaml"))
    fleet = Fleet(tmp_path)
    yield fleet
    fleet.beat.close()


def test_an_emptied_file_then_a_new_database_url_leave_the_fleet_on_its_store(fleet) -> None:
    good = fleet.config.read_text()
    fleet.land(2)
    fleet.config.write_text("")  # cp /dev/null config/emugen.yaml
    fleet.tick()
    fleet.land(2)
    assert "the file is empty" in fleet.last_rejection()[0]
    moved = yaml.safe_load(good)
    moved["database_url"] = f"sqlite:///{fleet.folder / 'other.db'}"
    moved["landing"]["root"] = str(fleet.folder / "elsewhere")
    moved["seed"] = 8  # a change that would apply on its own: the whole version is refused
    fleet.config.write_text(yaml.safe_dump(moved))
    fleet.tick()
    fleet.land(2)
    problems = fleet.last_rejection()
    assert [p.split(":")[0] for p in problems] == ["database_url", "landing.root"]
    assert all("restart to switch stores" in p for p in problems)
    assert fleet.seqs() == [1, 2, 3, 4, 5, 6]  # one store, one sequence
    assert not (fleet.folder / "other.db").exists()
    assert not (fleet.folder / "var").exists()  # nor the default store
    assert fleet.beat.settings is not None and fleet.beat.settings.seed == 7
    fleet.config.write_text(good.replace("seed: 7", "seed: 9"))  # back on its store: applies
    fleet.tick()
    assert fleet.beat.settings.seed == 9 and fleet.runtime.settings().seed == 9


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_status_pause_and_resume_under_an_invalid_file_use_the_store_the_fleet_recorded(
    fleet,
) -> None:
    fleet.land(2)
    fleet.config.write_text("")
    code, out, err = _run("status", "--json")
    assert code == 0, err
    assert [b["batch_id"] for b in json.loads(out)["latest"]] == [
        "events-000000002",
        "events-000000001",
    ]
    assert f"from {store_record_path(fleet.config)}, written by beat" in err
    assert "is invalid (the file is empty" in err and len(err.strip().splitlines()) == 1
    assert _run("pause")[:2] == (0, "paused\n")
    with read_session(engine_for(f"sqlite:///{fleet.store}")) as session:
        assert is_paused(session)
    fleet.config.unlink()  # a missing file too
    assert _run("resume")[:2] == (0, "resumed\n")
    with read_session(engine_for(f"sqlite:///{fleet.store}")) as session:
        assert not is_paused(session)
    assert not (fleet.folder / "var").exists()  # no default store was opened


def test_store_commands_under_an_invalid_file_with_nothing_recorded_open_no_store(fleet) -> None:
    store_record_path(fleet.config).unlink(missing_ok=True)
    fleet.config.write_text("# emptied\n")
    for command in ("status", "pause", "resume"):
        code, out, err = _run(command)
        assert code == 2, (command, out, err)
        assert "holds no settings" in err and "no fleet has recorded the store it runs on" in err
        assert len(err.strip().splitlines()) == 1
    assert not (fleet.folder / "var").exists()


def test_a_pool_process_forked_after_the_file_moved_the_store_stays_on_its_parents(fleet) -> None:
    from types import SimpleNamespace

    from emugen.fleet.app import _pin_stores

    store_record_path(fleet.config).unlink()
    parent = worker.configure(fleet.config)
    _pin_stores(sender=SimpleNamespace(pool_cls="prefork"))  # celery's worker_init, pre-fork
    assert '"by": "worker"' in store_record_path(fleet.config).read_text()
    moved = yaml.safe_load(fleet.config.read_text())
    moved["database_url"] = f"sqlite:///{fleet.folder / 'other.db'}"
    fleet.config.write_text(yaml.safe_dump(moved))
    child = worker.setup_process(fleet.config)  # a pool process replacing a killed one
    assert child is not parent
    assert child.settings().database_url == f"sqlite:///{fleet.store}"
    assert "restart to switch stores" in str(child.watcher.last_error)


def test_pause_under_a_valid_file_naming_a_new_store_pauses_the_fleet_that_runs(fleet) -> None:
    fleet.land(1)
    moved = yaml.safe_load(fleet.config.read_text())
    moved["database_url"] = f"sqlite:///{fleet.folder / 'other.db'}"
    fleet.config.write_text(yaml.safe_dump(moved))
    fleet.tick()  # refused: the fleet stays on its store until restarted
    code, out, err = _run("pause")
    assert (code, out) == (0, "paused\n"), err
    assert f"names database_url sqlite:///{fleet.folder / 'other.db'}" in err
    assert "which the fleet takes when it restarts" in err and len(err.splitlines()) == 1
    with read_session(engine_for(f"sqlite:///{fleet.store}")) as session:
        assert is_paused(session)
    assert not (fleet.folder / "other.db").exists()


def test_mode_refuses_to_turn_an_emptied_file_into_a_config_of_defaults(fleet) -> None:
    fleet.config.write_text("# emptied\n")
    code, out, err = _run("mode", "production")
    assert code == 2, out
    assert "holds no settings, and a mode line alone would put every other setting" in err
    assert fleet.config.read_text() == "# emptied\n"
