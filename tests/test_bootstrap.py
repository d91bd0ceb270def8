"""scripts/bootstrap.sh on a first install: says what it does, and nothing else."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYENV_SHIM = """#!/bin/sh
echo "pyenv: $(basename "$0"): command not found" >&2
echo "" >&2
echo "The \\`$(basename "$0")' command exists in these Python versions:" >&2
exit 127
"""


def _tiny_project(root: Path) -> None:
    """A package with no dependencies but emugen's own build system and license metadata, so
    the install is seconds while setuptools still judges our pyproject's form."""
    ours = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    requires = ", ".join(f'"{r}"' for r in ours["build-system"]["requires"])
    license_line = (
        f'license = "{ours["project"]["license"]}"'
        if isinstance(ours["project"]["license"], str)
        else f'license = {{ text = "{ours["project"]["license"]["text"]}" }}'
    )
    (root / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "bootstrap.sh", root / "scripts" / "bootstrap.sh")
    (root / "tiny").mkdir()
    (root / "tiny" / "__init__.py").write_text("")
    (root / "pyproject.toml").write_text(
        f'[build-system]\nrequires = [{requires}]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "tiny"\nversion = "0.1"\n{license_line}\n'
        "[project.optional-dependencies]\ndev = []\n\n"
        '[tool.setuptools.packages.find]\ninclude = ["tiny*"]\n'
    )


def test_a_first_install_prints_progress_and_no_pyenv_or_setuptools_noise(tmp_path: Path) -> None:
    _tiny_project(tmp_path)
    shims = tmp_path / "shims"
    shims.mkdir()
    for name in ("python3.13", "python3.12"):  # what pyenv leaves on PATH for other versions
        shim = shims / name
        shim.write_text(PYENV_SHIM)
        shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    env = {
        **os.environ,
        "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
        "PYTHON": "",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env["PATH"] = f"{shims}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        ["bash", "scripts/bootstrap.sh"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "command not found" not in output and "pyenv" not in output
    assert "!!" not in output and "Warning" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert all(line.startswith("bootstrap: ") for line in lines), output
    assert "creating .venv with" in output and "ready in" in output
    assert (tmp_path / ".venv" / "bootstrap.log").exists()


def _tiny_fleet(root: Path) -> None:
    """The tiny project with an `emugen` command that only says how it was called, a dev extra
    (a small package), and scripts/up.sh beside bootstrap.sh."""
    _tiny_project(root)
    shutil.copy(REPO / "scripts" / "up.sh", root / "scripts" / "up.sh")
    (root / "tiny" / "__init__.py").write_text(
        "import sys\n\ndef main():\n    print('emugen called with', sys.argv[1:])\n"
    )
    text = (root / "pyproject.toml").read_text()
    text = text.replace("dev = []", 'dev = ["iniconfig"]')
    text = text.replace(
        "[project.optional-dependencies]",
        '[project.scripts]\nemugen = "tiny:main"\n\n[project.optional-dependencies]',
    )
    (root / "pyproject.toml").write_text(text)


def test_up_installs_the_runtime_without_the_dev_extras_once_then_runs_emugen_up(
    tmp_path: Path,
) -> None:
    _tiny_fleet(tmp_path)
    env = {**os.environ, "PYTHON": sys.executable, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}

    def up(*args: str) -> str:
        done = subprocess.run(
            ["bash", "scripts/up.sh", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    first = up("--web-port", "8100")
    assert "installing emugen (the runtime, no dev extras)" in first
    assert "emugen called with ['up', '--web-port', '8100']" in first
    venv_python = str(tmp_path / ".venv" / "bin" / "python")
    dev_missing = subprocess.run([venv_python, "-c", "import iniconfig"], capture_output=True)
    assert dev_missing.returncode != 0  # the dev extra was not installed

    second = up()
    assert "bootstrap:" not in second  # installed already: straight to `emugen up`
    assert "emugen called with ['up']" in second

    # scripts/test.sh's install (the dev extra) coexists with it in the same .venv
    dev = subprocess.run(
        ["bash", "scripts/bootstrap.sh"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert dev.returncode == 0, dev.stdout + dev.stderr
    assert subprocess.run([venv_python, "-c", "import iniconfig, tiny"]).returncode == 0
    assert "bootstrap:" not in up()

    (tmp_path / "pyproject.toml").write_text(
        (tmp_path / "pyproject.toml").read_text().replace('version = "0.1"', 'version = "0.2"')
    )
    assert "emugen (the runtime, no dev extras) in" in up()  # pyproject changed: installs again
