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
    license_line = (f'license = "{ours["project"]["license"]}"'
                    if isinstance(ours["project"]["license"], str)
                    else f'license = {{ text = "{ours["project"]["license"]["text"]}" }}')
    (root / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "bootstrap.sh", root / "scripts" / "bootstrap.sh")
    (root / "tiny").mkdir()
    (root / "tiny" / "__init__.py").write_text("")
    (root / "pyproject.toml").write_text(
        f'[build-system]\nrequires = [{requires}]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "tiny"\nversion = "0.1"\n{license_line}\n'
        '[project.optional-dependencies]\ndev = []\n\n'
        '[tool.setuptools.packages.find]\ninclude = ["tiny*"]\n')


def test_a_first_install_prints_progress_and_no_pyenv_or_setuptools_noise(tmp_path: Path) -> None:
    _tiny_project(tmp_path)
    shims = tmp_path / "shims"
    shims.mkdir()
    for name in ("python3.13", "python3.12"):  # what pyenv leaves on PATH for other versions
        shim = shims / name
        shim.write_text(PYENV_SHIM)
        shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
           "PYTHON": "", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env["PATH"] = f"{shims}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(["bash", "scripts/bootstrap.sh"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "command not found" not in output and "pyenv" not in output
    assert "!!" not in output and "Warning" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert all(line.startswith("bootstrap: ") for line in lines), output
    assert "creating .venv with" in output and "ready in" in output
    assert (tmp_path / ".venv" / "bootstrap.log").exists()
