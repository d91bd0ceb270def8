"""`celery -A emugen flower` (the Procfile's line) refuses to serve without a login."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from emugen.errors import FlowerLoginMissing
from emugen.fleet.broker import free_port
from emugen.fleet.flower_login import require_login
from emugen.fleet.up import PROCESSES, flower_auth, read_procfile, resolve
from tests.fleet_helpers import write_config

REPO = Path(__file__).resolve().parents[1]


def test_no_login_anywhere_is_refused_with_the_variable_to_set() -> None:
    with pytest.raises(FlowerLoginMissing, match="FLOWER_BASIC_AUTH=user:password"):
        require_login(["--port=5555"], {"FLOWER_BASIC_AUTH": "  "})


@pytest.mark.parametrize(
    ("argv", "environ"),
    [
        ([], {"FLOWER_BASIC_AUTH": "admin:pw"}),
        ([], {"FLOWER_AUTH": ".*@example\\.com"}),
        (["--basic-auth=admin:pw"], {}),
        (["--basic_auth=admin:pw"], {}),
        (["--auth=.*@example\\.com"], {}),
    ],
)
def test_any_of_flowers_own_logins_is_accepted(argv, environ) -> None:
    require_login(argv, environ)


def test_the_login_emugen_up_makes_up_passes_the_guard() -> None:
    require_login([], {"FLOWER_BASIC_AUTH": flower_auth({}).value})


def _run_flower(command: str, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    # a broker nobody listens on: the pre-guard Flower would idle here instead of exiting
    config = write_config(
        tmp_path / "emugen.yaml",
        f"sqlite:///{tmp_path / 'e.db'}",
        broker_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWER_", "EMUGEN_"))}
    argv = resolve(command)
    argv[argv.index("--port=5555")] = f"--port={free_port()}"
    return subprocess.run(
        argv,
        env={**env, "EMUGEN_CONFIG": str(config), **extra},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_procfiles_flower_refuses_to_start_without_a_login(tmp_path) -> None:
    command = read_procfile(REPO / "Procfile")["flower"]
    assert command == next(p.command for p in PROCESSES if p.name == "flower")
    try:
        done = _run_flower(command, tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail("Flower started without a login and kept serving")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "FLOWER_BASIC_AUTH" in lines[0] and "Traceback" not in done.stderr
