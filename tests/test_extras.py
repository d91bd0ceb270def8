"""A plain install (no extras) runs everything that does not need them; a feature that does says
which extra to install, in one line.

Each test runs a fresh interpreter in which the optional packages cannot be imported, as in a
venv where only `pip install emugen` ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# import names of what only the extras (postgres, s3, spark, lab, dev) install
EXTRAS_ONLY = (
    "psycopg",
    "psycopg_binary",
    "s3fs",
    "pyspark",
    "httpx",
    "pytest",
    "hypothesis",
    "fakeredis",
    "playwright",
    "schemathesis",
    "moto",
    "boto3",
    "botocore",
    "mypy",
)

BLOCKER = textwrap.dedent(f"""
    import sys
    from importlib.abc import MetaPathFinder

    class NotInstalled(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {EXTRAS_ONLY!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, NotInstalled())
    for loaded in [m for m in sys.modules if m.split(".")[0] in {EXTRAS_ONLY!r}]:
        del sys.modules[loaded]
""")


def run_without_extras(
    code: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EMUGEN_")}
    clean.update(env or {}, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_module_imports_without_the_extras(tmp_path: Path) -> None:
    done = run_without_extras(
        """
        import importlib, pkgutil
        import emugen
        failed = []
        for info in pkgutil.walk_packages(emugen.__path__, prefix="emugen."):
            if info.name.endswith("__main__"):
                continue
            try:
                importlib.import_module(info.name)
            except ImportError as exc:
                failed.append(f"{info.name}: {exc}")
        print("\\n".join(failed) or "all imported")
    """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "all imported"


def test_init_pipeline_run_and_status_work_without_the_extras(tmp_path: Path) -> None:
    done = run_without_extras(
        """
        import sys
        from emugen.cli import main
        for argv in (["init"], ["pipeline", "run", "--size", "5"], ["status"]):
            try:
                main(argv, standalone_mode=False)
            except SystemExit as exc:
                sys.exit(f"{argv} exited {exc.code}")
    """,
        tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 batches" in done.stdout and "fleet:" in done.stdout


def _one_line_exit_2(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    return done.stderr


def test_a_postgresql_database_without_psycopg_names_the_postgres_extra(tmp_path: Path) -> None:
    done = run_without_extras(
        """
        from emugen.cli import main
        main(["init"], standalone_mode=False)
        main(["status"], prog_name="emugen")
    """,
        tmp_path,
        {"EMUGEN_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test"},
    )
    line = _one_line_exit_2(done)
    assert "pip install 'emugen[postgres]'" in line and "PostgreSQL" in line


def test_an_s3_landing_root_without_s3fs_names_the_s3_extra(tmp_path: Path) -> None:
    done = run_without_extras(
        """
        import sys
        from emugen.errors import MissingExtra
        from emugen.sinks.filesystem import open_zone
        try:
            open_zone("s3://bucket/landing", {})
        except MissingExtra as exc:
            sys.exit(f"{exc.exit_code} {exc}")
    """,
        tmp_path,
    )
    assert "2 the landing root s3://bucket/landing needs" in done.stderr
    assert "pip install 'emugen[s3]'" in done.stderr


def test_every_extra_a_message_names_is_an_extra_of_pyproject() -> None:
    import re
    import tomllib

    named = {
        m
        for path in (REPO / "emugen").rglob("*.py")
        for m in re.findall(r'import_extra\([^,]+, "(\w+)"', path.read_text())
    }
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert named == {"postgres", "s3", "lab"}
    assert named <= set(extras)
