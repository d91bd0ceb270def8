"""`emugen export --out`: never over the store, a database, a device or a kernel file; `-` is
stdout, an existing file needs --force, the name's suffix may not contradict --format, and an
OS error is one line with the target unchanged. Real stores, real processes, real files."""

from __future__ import annotations

import hashlib
import os
import pty
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import orjson
import pytest
import yaml
from click.testing import CliRunner

from emugen.cli import main
from tests.disk_helpers import SmallDisk

EMUGEN = str(Path(sys.executable).with_name("emugen"))
SIMULATED = {"kind": "simulated", "start": "2026-01-01T00:00:00Z"}


@pytest.fixture(scope="module")
def built_store(tmp_path_factory) -> Path:
    """A SQLite store with 2 batches of each stream, made once by `emugen pipeline run`."""
    folder = tmp_path_factory.mktemp("built")
    config = _config(folder, folder / "emugen.db")
    done = subprocess.run(
        [EMUGEN, "pipeline", "run", "--batches", "2", "--size", "30", "--config", str(config)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return folder / "emugen.db"


@pytest.fixture
def store(built_store, tmp_path) -> Path:
    """A private copy of the built store in tmp_path (so bytes can be compared), and its config
    at tmp_path/emugen.yaml; the working folder of `_emugen` is tmp_path."""
    shutil.copy(built_store, tmp_path / "emugen.db")
    _config(tmp_path, Path("emugen.db"))
    return tmp_path / "emugen.db"


def _config(folder: Path, db: Path) -> Path:
    config = folder / "emugen.yaml"
    config.write_text(
        yaml.safe_dump(
            {"database_url": f"sqlite:///{db}", "clock": SIMULATED, "landing": {"enabled": False}}
        )
    )
    return config


def _emugen(
    cwd: Path, *args: str, stdout: int | None = subprocess.PIPE
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [EMUGEN, *args],
        cwd=cwd,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env={**os.environ, "EMUGEN_CONFIG": str(cwd / "emugen.yaml")},
        timeout=120,
    )


def _cli(cwd: Path, *args: str, monkeypatch: pytest.MonkeyPatch) -> subprocess.CompletedProcess:
    """The command in this process (click's runner), shaped as a finished process."""
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("EMUGEN_CONFIG", str(cwd / "emugen.yaml"))
    result = CliRunner().invoke(main, list(args))
    return subprocess.CompletedProcess(
        args, result.exit_code, result.stdout_bytes, result.stderr_bytes
    )


def _refused(done: subprocess.CompletedProcess[bytes], needle: str) -> None:
    """Exit 2 with exactly one line that holds `needle`, and no traceback."""
    text = done.stderr.decode()
    assert done.returncode == 2, text
    assert len(text.strip().splitlines()) == 1 and needle in text, text
    assert "Traceback" not in text


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _no_temporaries(folder: Path) -> None:
    left = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert not left, f"temporaries left behind: {left}"


def test_export_truth_over_the_configured_store_is_refused_and_the_store_still_works(store):
    before = _sha(store)
    for args in (["truth"], ["bronze", "--format", "jsonl", "--force"]):
        done = _emugen(store.parent, "export", *args, "--out", "emugen.db")
        _refused(done, "--out emugen.db: is the configured store")
    assert _sha(store) == before
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT count(*) FROM bronze_records").fetchone()[0] == 120
    status = _emugen(store.parent, "status")
    assert status.returncode == 0 and b"not a database" not in status.stdout + status.stderr


def test_a_hard_link_to_the_store_under_another_name_is_refused_as_the_store(store, monkeypatch):
    os.link(store, store.parent / "copy.parquet")  # same inode: an empty store would not show
    _refused(
        _cli(
            store.parent,
            "export",
            "truth",
            "--force",
            "--out",
            "copy.parquet",
            monkeypatch=monkeypatch,
        ),
        "is the configured store",
    )


@pytest.mark.parametrize("kind", ["sqlite", "duckdb"])
def test_any_database_file_is_refused_even_with_force(store, kind, monkeypatch):
    other = store.parent / f"other.{kind}"
    if kind == "sqlite":
        with sqlite3.connect(other) as conn:
            conn.execute("CREATE TABLE t (a INTEGER)")
    else:
        duckdb.connect(str(other)).execute("CREATE TABLE t (a INTEGER)").close()
    before = _sha(other)
    done = _cli(
        store.parent,
        "export",
        "bronze",
        "--format",
        "csv",
        "--force",
        "--out",
        other.name,
        monkeypatch=monkeypatch,
    )
    _refused(done, f"is a {'SQLite' if kind == 'sqlite' else 'DuckDB'} database")
    assert _sha(other) == before


def test_a_device_node_is_refused_and_stays_a_device(store):
    node = store.parent / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a private /dev/null
    except PermissionError as exc:
        pytest.skip(f"making a device node needs CAP_MKNOD: {exc}")
    done = _emugen(store.parent, "export", "truth", "--force", "--out", "null")
    _refused(done, "--out null: is a character device, not a regular file")
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    assert os.lstat(node).st_rdev == os.makedev(1, 3)
    _no_temporaries(store.parent)


def test_a_fifo_is_refused_and_stays_a_fifo(store):
    fifo = store.parent / "pipe"
    os.mkfifo(fifo)
    _refused(
        _emugen(store.parent, "export", "truth", "--force", "--out", "pipe"),
        "is a fifo (named pipe), not a regular file",
    )
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    _no_temporaries(store.parent)


def test_a_link_to_the_commands_own_stdout_is_refused_not_replaced(store):
    """What /dev/stdout is, made privately: a symbolic link to /proc/self/fd/1."""
    link = store.parent / "stdout"
    link.symlink_to("/proc/self/fd/1")
    _refused(
        _emugen(store.parent, "export", "truth", "--out", "stdout"), "is a fifo (named pipe)"
    )  # stdout is our pipe
    log = store.parent / "log.txt"
    with log.open("wb") as fh:
        done = _emugen(store.parent, "export", "truth", "--force", "--out", "stdout", stdout=fh)
    _refused(done, "is this command's own stdin, stdout or stderr; use `-`")
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"
    assert log.read_bytes() == b""


def test_a_file_of_the_kernel_is_refused_with_one_line(store):
    before = Path("/proc/version").read_bytes()  # read only: /proc is the reference here
    _refused(
        _emugen(store.parent, "export", "truth", "--out", "/proc/version"),
        "--out /proc/version: is on the kernel's proc file system, not a disk",
    )
    assert Path("/proc/version").read_bytes() == before


def test_a_300_character_name_is_one_line_not_a_traceback(store):
    name = "x" * 296 + ".csv"
    _refused(_emugen(store.parent, "export", "truth", "--out", name), "the name is too long")
    _no_temporaries(store.parent)


@pytest.mark.parametrize(
    ("fmt", "name"),
    [("jsonl", "x.parquet"), ("parquet", "x.csv"), ("csv", "x.jsonl"), ("parquet", "x.json")],
)
def test_a_format_that_the_name_contradicts_is_refused(store, fmt, name, monkeypatch):
    done = _cli(
        store.parent, "export", "bronze", "--format", fmt, "--out", name, monkeypatch=monkeypatch
    )
    _refused(done, f"--out {name}: a {Path(name).suffix} name says")
    assert not (store.parent / name).exists()


@pytest.mark.parametrize(
    ("name", "reader"),
    [("b.jsonl", "read_json"), ("b.csv", "read_csv"), ("b.parquet", "read_parquet")],
)
def test_without_format_the_names_suffix_chooses_it(store, name, reader, monkeypatch):
    done = _cli(store.parent, "export", "bronze", "--out", name, monkeypatch=monkeypatch)
    assert done.returncode == 0, done.stderr
    out = store.parent / name
    rows = duckdb.sql(f"SELECT count(*) FROM {reader}('{out}')").fetchall()[0][0]
    assert rows == 120
    if name.endswith(".jsonl"):
        assert all(orjson.loads(line) for line in out.read_bytes().splitlines())


def test_an_existing_file_is_kept_without_force_and_replaced_with_it(store, monkeypatch):
    out = store.parent / "mine.jsonl"
    out.write_bytes(b"precious\n")
    out.chmod(0o640)
    _refused(
        _cli(store.parent, "export", "bronze", "--out", "mine.jsonl", monkeypatch=monkeypatch),
        "--out mine.jsonl: already exists; add --force to replace it",
    )
    assert out.read_bytes() == b"precious\n"
    done = _cli(
        store.parent, "export", "bronze", "--force", "--out", "mine.jsonl", monkeypatch=monkeypatch
    )
    assert done.returncode == 0, done.stderr
    assert len(out.read_bytes().splitlines()) == 120
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # the replaced file's mode is kept
    _no_temporaries(store.parent)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_dash_streams_text_to_stdout_and_the_count_to_stderr(store, fmt):
    done = _emugen(store.parent, "export", "bronze", "--format", fmt, "--out", "-")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    if fmt == "jsonl":
        assert len(lines) == 120 and orjson.loads(lines[0])["row_no"] == 0
    else:
        assert len(lines) == 121 and lines[0].startswith(b'"batch_id","stream","row_no"')
    assert b"120 bronze rows written to stdout" in done.stderr
    assert sorted(p.name for p in store.parent.iterdir()) == ["emugen.db", "emugen.yaml"]


@pytest.mark.parametrize("kind", ["bronze", "truth"])
def test_dash_writes_parquet_into_a_pipe_that_reads_back_whole(store, kind):
    done = _emugen(store.parent, "export", kind, "--out", "-")
    assert done.returncode == 0, done.stderr
    copy = store.parent / "copy.parquet"
    copy.write_bytes(done.stdout)
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{copy}')").fetchall()[0][0] == 120


def test_dash_refuses_parquet_on_a_terminal(store):
    leader, follower = pty.openpty()
    try:
        done = _emugen(store.parent, "export", "bronze", "--out", "-", stdout=follower)
    finally:
        os.close(follower)
        os.close(leader)
    _refused(done, "would print Parquet (binary) on the terminal")


def test_a_path_through_a_file_is_one_line(store, monkeypatch):
    (store.parent / "plain").write_text("x")
    _refused(
        _cli(store.parent, "export", "truth", "--out", "plain/t.parquet", monkeypatch=monkeypatch),
        "a part of the path is a file, not a folder",
    )


@pytest.fixture
def tiny_disk(tmp_path):
    disk = SmallDisk(tmp_path / "tiny", "64k")
    try:
        if os.geteuid() != 0:
            raise PermissionError("mounting a tmpfs needs root")
        disk.mount()
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"no tmpfs of 64k can be mounted here: {getattr(exc, 'stderr', '') or exc}")
    try:
        yield disk
    finally:
        disk.free()
        disk.unmount()


@pytest.mark.parametrize("kind", ["bronze", "truth"])
def test_a_full_disk_is_one_line_and_the_replaced_file_is_unchanged(store, tiny_disk, kind):
    out = tiny_disk.path / "old.jsonl"
    out.write_bytes(b'{"kept": true}\n' * 100)
    tiny_disk.fill()
    done = _emugen(store.parent, "export", kind, "--format", "jsonl", "--force", "--out", str(out))
    _refused(done, "cannot write: ")
    assert "the disk is full" in done.stderr.decode() or "No space left" in done.stderr.decode()
    assert out.read_bytes() == b'{"kept": true}\n' * 100
    assert sorted(p.name for p in tiny_disk.path.iterdir()) == ["filler", "old.jsonl"]


def test_a_read_only_disk_is_one_line_and_the_file_is_unchanged(store, tiny_disk):
    out = tiny_disk.path / "old.csv"
    out.write_bytes(b"a,b\n1,2\n")
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk.path)], check=True)
    try:
        done = _emugen(store.parent, "export", "bronze", "--force", "--out", str(out))
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tiny_disk.path)], check=True)
    _refused(done, "the file system is read-only; choose a writable folder")
    assert out.read_bytes() == b"a,b\n1,2\n"


def test_a_file_that_appears_while_writing_is_not_replaced(tmp_path):
    from emugen.errors import OutputRefused
    from emugen.files.target import check_output
    from emugen.files.write import staged

    out = tmp_path / "t.jsonl"
    target = check_output(str(out))
    with pytest.raises(OutputRefused, match="already exists; add --force"), staged(target) as tmp:
        tmp.write_bytes(b"ours\n")
        out.write_bytes(b"theirs\n")  # another writer, between the check and the rename
    assert out.read_bytes() == b"theirs\n"
    _no_temporaries(tmp_path)
