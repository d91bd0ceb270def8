"""The README's tour works when pasted: its commands, run in order in a copy of the repository
against a fleet of their own (a private Redis, free ports), exit as the README says they do.

The fleet is `.venv/bin/emugen up`, which is what the README's `bash scripts/up.sh` runs once
it has installed; the install itself is tested in tests/test_bootstrap.py.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from emugen.fleet.broker import free_port
from tests.integration.test_up import copy_working_tree

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
FIRST_GOLD_S = 120  # a generous bound: this waits for the fleet, it judges nothing by time


def tour_commands(text: str) -> list[str]:
    """The shell commands of the README's tour, in order, continuation lines joined."""
    tour = text.split("## A ten-minute tour", 1)[1].split("\n## ", 1)[0]
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", tour, flags=re.DOTALL):
        joined = re.sub(r"\\\n\s*", "", block)
        commands += [line.strip() for line in joined.splitlines() if line.strip()]
    return commands


def expected_code(commands: list[str], index: int) -> int:
    """0, except the grade right after the weakened pipeline: the README says it exits 1."""
    command = commands[index]
    weakened = index > 0 and "--weak" in commands[index - 1]
    return 1 if " grade " in f" {command} " and weakened else 0


def test_the_tour_is_a_list_of_commands_the_test_understands():
    commands = tour_commands(README.read_text(encoding="utf-8"))
    assert commands and all(c.startswith(".venv/bin/") for c in commands), commands
    assert [expected_code(commands, i) for i in range(len(commands))].count(1) == 1


def _landed_invalid_enums(folder: Path) -> int:
    """Injected invalid_enum records in batches that reached gold and landed: what the tour's
    weakened pipeline must let through (read from the store, as the grader does)."""
    store = folder / "var" / "emugen.db"
    if not store.exists():
        return 0
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30) as db:
        return db.execute(
            "select count(*) from injected_defects d join batches b using (batch_id) "
            "join landed_files f using (batch_id) "
            "where d.defect = 'invalid_enum' and b.status = 'gold'"
        ).fetchone()[0]


def test_the_readme_tour_works_when_pasted(tmp_path: Path, redis_binary: str):
    folder = tmp_path / "clone"
    copy_working_tree(folder)
    (folder / ".venv").symlink_to(REPO / ".venv")
    # more dirty records than the preset's 5 %, so that an invalid_enum (which the tour's
    # weakened pipeline lets through) is injected within a few batches rather than minutes
    config = folder / "config" / "emugen.yaml"
    config.write_text(
        re.sub(r"(?m)^(\s+)rate: 0\.05\b", r"\1rate: 0.5", config.read_text(encoding="utf-8")),
        encoding="utf-8",
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EMUGEN_") and k != "FLOWER_BASIC_AUTH"
    }
    env.update(
        PYTHONPATH=str(folder),
        PYTHONUNBUFFERED="1",
        EMUGEN_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",  # up starts it
        EMUGEN_WEB_PORT=str(free_port()),
        EMUGEN_FLOWER_PORT=str(free_port()),
    )
    out = (tmp_path / "up.out").open("wb")
    up = subprocess.Popen(
        [".venv/bin/emugen", "up"],
        cwd=folder,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + FIRST_GOLD_S
        while _landed_invalid_enums(folder) < 1:
            assert up.poll() is None, (tmp_path / "up.out").read_text()
            assert time.monotonic() < deadline, (tmp_path / "up.out").read_text()
            time.sleep(1)
        commands = tour_commands(README.read_text(encoding="utf-8"))
        for index, command in enumerate(commands):
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == expected_code(commands, index), (
                f"{command}\nexit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
            assert "Traceback" not in done.stderr, done.stderr
    finally:
        os.killpg(up.pid, signal.SIGINT)  # Ctrl-C, as the README says
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait(10)
        out.close()
    assert up.returncode == 0, (tmp_path / "up.out").read_text()
