"""The other commands that write a path a user gives follow export's rule: `generate --truth`,
`bench --out` and the folders of `soak`/`chaos --out` are checked before any work, refused
with one line and exit 2, and never write over what they were not given."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from emugen.cli import main

SIMULATED = {"kind": "simulated", "start": "2026-01-01T00:00:00Z"}


@pytest.fixture
def config(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "emugen.yaml"
    path.write_text(
        yaml.safe_dump(
            {"database_url": f"sqlite:///{tmp_path / 'emugen.db'}", "clock": SIMULATED, "seed": 7}
        )
    )
    return path


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _refused(result: Result, needle: str) -> None:
    assert result.exit_code == 2, result.output
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def _truth_args(config: Path, *more: str) -> list[str]:
    # 400 events at the default defect rates: the truth is not empty
    return ["generate", "events", "--seq", "1", "--size", "400", "--config", str(config), *more]


def test_generate_truth_keeps_an_existing_file_and_prints_nothing_without_force(config):
    truth = config.parent / "truth.jsonl"
    truth.write_bytes(b"mine\n")
    result = _run(*_truth_args(config, "--truth", str(truth)))
    _refused(result, f"--truth {truth}: already exists; add --force")
    assert result.stdout == "" and truth.read_bytes() == b"mine\n"
    replaced = _run(*_truth_args(config, "--truth", str(truth), "--force"))
    assert replaced.exit_code == 0, replaced.output
    assert truth.read_bytes() != b"mine\n" and truth.read_text().count("\n") > 0
    assert not [p for p in config.parent.iterdir() if p.name.startswith(".")]


def test_generate_truth_refuses_a_database_a_device_and_stdout(config):
    db = config.parent / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (a INTEGER)")
    before = db.read_bytes()
    _refused(_run(*_truth_args(config, "--truth", str(db), "--force")), "is a SQLite database")
    assert db.read_bytes() == before
    _refused(_run(*_truth_args(config, "--truth", "-")), "stdout carries the batch")
    fifo = config.parent / "pipe"
    os.mkfifo(fifo)
    _refused(_run(*_truth_args(config, "--truth", str(fifo), "--force")), "is a fifo")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        ("existing", "already exists; add --force"),
        ("sqlite", "is a SQLite database"),
        ("folder", "is a folder"),
        ("kernel", "is on the kernel's proc file system"),
    ],
)
def test_bench_refuses_its_out_before_measuring_anything(tmp_path, monkeypatch, make, needle):
    import emugen.lab.suite

    def never(**_: object) -> dict:
        raise AssertionError("the bench ran although --out was refused")

    monkeypatch.setattr(emugen.lab.suite, "bench_all", never)
    out = tmp_path / "bench.json"
    if make == "existing":
        out.write_text("{}\n")
    elif make == "sqlite":
        with sqlite3.connect(out) as conn:
            conn.execute("CREATE TABLE t (a INTEGER)")
    elif make == "folder":
        out.mkdir()
    else:
        out = Path("/proc/bench.json")
    before = out.read_bytes() if out.is_file() else None
    _refused(_run("bench", "--quick", "--out", str(out)), needle)
    assert (out.read_bytes() if out.is_file() else None) == before


def test_bench_force_replaces_the_file_and_dash_prints_the_json(tmp_path, monkeypatch):
    import emugen.lab.suite

    monkeypatch.setattr(emugen.lab.suite, "bench_all", lambda **_: {"figure": 1})
    monkeypatch.setattr(emugen.lab.suite, "table", lambda result: "the table")
    out = tmp_path / "bench.json"
    out.write_text("old\n")
    result = _run("bench", "--out", str(out), "--force")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(out.read_text()) == {"figure": 1}
    to_stdout = _run("bench", "all", "--out", "-")
    assert to_stdout.exit_code == 0, to_stdout.output
    assert yaml.safe_load(to_stdout.stdout) == {"figure": 1}
    assert "the table" in to_stdout.stderr


def test_soak_refuses_a_folder_that_holds_other_files(tmp_path, monkeypatch):
    import emugen.lab.soak

    def never(*_: object, **__: object) -> None:
        raise AssertionError("the soak ran although --out was refused")

    monkeypatch.setattr(emugen.lab.soak, "run_soak", never)
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "emugen.yaml").write_text("seed: 1\n")
    _refused(
        _run("soak", "--duration", "3m", "--out", str(folder)),
        "holds other files (emugen.yaml) that this command would overwrite or delete",
    )
    assert (folder / "emugen.yaml").read_text() == "seed: 1\n"
    (tmp_path / "plain").write_text("x")
    _refused(_run("chaos", "--out", str(tmp_path / "plain")), "is not a folder")
