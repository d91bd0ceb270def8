"""The one process supervisor: real child processes, started, awaited, stopped and described."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
import yaml

from emugen.errors import EmugenError
from emugen.fleet.reload import write_yaml_atomically
from emugen.fleet.supervisor import (
    FleetStartError,
    ended,
    spawn,
    stop,
    terminate_together,
    wait_for,
)

STUBBORN = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(120)\n"
)


def test_a_spawned_child_logs_to_its_file_in_its_folder_with_its_env(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    proc = spawn(
        [sys.executable, "-c", "import os; print(os.getcwd(), os.environ['ROLE'])"],
        log,
        env={"ROLE": "worker7", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    assert proc.wait(30) == 0
    assert log.read_text().split() == [str(tmp_path), "worker7"]


def test_wait_for_returns_the_first_truthy_value() -> None:
    answers = iter([None, 0, "", "up"])
    assert wait_for(lambda: next(answers), 10, "the answer", every=0.001) == "up"


def test_wait_for_names_what_it_waited_for_at_the_deadline() -> None:
    with pytest.raises(FleetStartError, match="timed out after 0.05 s waiting for beat"):
        wait_for(lambda: False, 0.05, "beat", every=0.01)
    assert issubclass(FleetStartError, EmugenError)


def test_stop_ends_a_child_that_obeys_sigterm_with_sigterm(tmp_path: Path) -> None:
    proc = spawn([sys.executable, "-c", "import time; time.sleep(120)"], tmp_path / "a.log")
    stop(proc, timeout=20)
    assert proc.returncode == -signal.SIGTERM
    assert ended(proc.returncode) == "was killed by SIGTERM"


def test_stop_kills_a_child_that_ignores_sigterm_after_the_grace(tmp_path: Path) -> None:
    log = tmp_path / "b.log"
    proc = spawn([sys.executable, "-c", STUBBORN], log)
    wait_for(lambda: "ready" in log.read_text(), 30, "the child to ignore SIGTERM")
    stop(proc, timeout=0.5)
    assert proc.returncode == -signal.SIGKILL


def test_ended_says_how_a_process_exited() -> None:
    assert ended(3) == "exited with code 3"
    assert ended(0) == "exited with code 0"


def test_the_yaml_writer_replaces_the_file_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "emugen.yaml"
    path.write_text("mode: emulated\n")
    write_yaml_atomically(path, {"mode": "production", "seed": 7})
    assert yaml.safe_load(path.read_text()) == {"mode": "production", "seed": 7}
    assert path.read_text().startswith("mode: production")  # key order kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emugen.yaml"]


def test_terminating_together_times_each_exit_and_leaves_stragglers_to_the_caller(
    tmp_path: Path,
) -> None:
    log = tmp_path / "c.log"
    obeys = spawn([sys.executable, "-c", "import time; time.sleep(120)"], tmp_path / "d.log")
    stubborn = spawn([sys.executable, "-c", STUBBORN], log)
    wait_for(lambda: "ready" in log.read_text(), 30, "the child to ignore SIGTERM")
    took = terminate_together([obeys, stubborn], timeout=0.5)
    assert set(took) == {obeys.pid}
    assert stubborn.poll() is None
    stop(stubborn, timeout=0.1)
    assert stubborn.returncode == -signal.SIGKILL


def test_terminating_together_stops_waiting_when_told_to_hurry(tmp_path: Path) -> None:
    log = tmp_path / "e.log"
    stubborn = spawn([sys.executable, "-c", STUBBORN], log)
    wait_for(lambda: "ready" in log.read_text(), 30, "the child to ignore SIGTERM")
    assert terminate_together([stubborn], timeout=600, hurry=lambda: True) == {}
    stop(stubborn, timeout=0.1)
