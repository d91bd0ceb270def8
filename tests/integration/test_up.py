"""`emugen up` from a fresh copy with no Redis running: batches within 15 s, Ctrl-C stops all."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emugen.fleet.broker import answers, free_port
from emugen.fleet.supervisor import wait_for
from tests.fleet_helpers import write_config

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
FIRST_BATCHES_S = 15
STOPPED_S = 20
SKIP = (
    "var",
    ".venv",
    ".git",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    ".hypothesis",
    "build",
)


def copy_working_tree(dest: Path) -> None:
    """What a clone would hold, plus uncommitted work: the files git tracks or would track."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:  # not a git checkout (an sdist, say): copy minus the clutter
        shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(*SKIP), dirs_exist_ok=True)
        return
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = REPO / name
        if source.is_file():  # deleted-but-tracked files are listed too
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def descendants(root: int) -> dict[int, str]:
    """pid -> command line of every process below `root` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found: dict[int, str] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError):
            found[pid] = (
                Path(f"/proc/{pid}/cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace")
                .strip()
            )
        todo.extend(children.get(pid, []))
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie waiting for a reaper that is not ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def status(folder: Path, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "emugen", "status", "--json", "--latest", "0"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return json.loads(done.stdout) if done.returncode == 0 else {}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_up_runs_the_fleet_and_ctrl_c_stops_every_process(
    tmp_path: Path, redis_binary: str
) -> None:
    folder = tmp_path / "emugen"
    copy_working_tree(folder)
    assert not (folder / "var").exists()
    port = free_port()  # nothing listens there: up must start its own redis-server
    broker_url = f"redis://127.0.0.1:{port}/0"
    write_config(
        folder / "config" / "emugen.yaml",
        "sqlite:///var/emugen.db",
        interval=2,
        broker_url=broker_url,
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EMUGEN_") and k != "FLOWER_BASIC_AUTH"
    }
    env.update(PYTHONPATH=str(folder), PYTHONUNBUFFERED="1")  # the copy's code, not the repo's
    web_port, flower_port = free_port(), free_port()  # never another fleet's 8000 and 5555
    out = tmp_path / "up.out"
    started = time.monotonic()
    with out.open("wb") as sink:
        # its own process group, so the Ctrl-C below reaches exactly what a terminal's would
        up = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emugen",
                "up",
                "--web-port",
                str(web_port),
                "--flower-port",
                str(flower_port),
            ],
            cwd=folder,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    seen: dict[int, str] = {}
    try:
        report: dict = {}
        while time.monotonic() - started < FIRST_BATCHES_S:
            assert up.poll() is None, f"emugen up exited with {up.returncode}"
            seen.update(descendants(up.pid))
            report = status(folder, env) if (folder / "var" / "emugen.db").exists() else {}
            if any(states.get("gold") for states in report.get("batches", {}).values()):
                break
            time.sleep(0.5)
        first_gold_s = time.monotonic() - started
        assert any(s.get("gold") for s in report.get("batches", {}).values()), report
        print(f"first batch in gold {first_gold_s:.1f} s after `emugen up` started")

        seen.update(descendants(up.pid))
        commands = list(seen.values())
        expected = ["redis-server", "emugen worker", "emugen beat", "emugen flower"]
        for part in expected:
            assert any(part in c for c in commands), f"no {part} among {commands}"
        assert answers(broker_url), "the private redis-server does not answer"
        assert (folder / "var" / "redis").is_dir()
        text = out.read_text()
        assert "started a private redis-server" in text and "var/log" in text
        # each URL once it answered as this fleet, the login after Flower's
        wait_for(
            lambda: f"dashboard  http://127.0.0.1:{web_port}\n" in out.read_text(),
            30,
            "the dashboard's URL",
        )
        wait_for(
            lambda: re.search(
                rf"Flower +http://127.0.0.1:{flower_port}\nFlower login: "
                "emugen / ",
                out.read_text(),
            ),
            30,
            "Flower's URL and login",
        )
        # the summary line names each stream's next tick, as beat plans it (emugen.fleet.due)
        wait_for(
            lambda: re.search(
                r"\| next: companies \d\d:\d\d:\d\d \((in \d+ s|now)\), "
                r"events \d\d:\d\d:\d\d",
                out.read_text(),
            ),
            10,
            "the summary line to show the next ticks",
        )

        asked = time.monotonic()
        os.killpg(up.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        code = up.wait(STOPPED_S + 5)
        stop_s = time.monotonic() - asked
        left = {pid: cmd for pid, cmd in seen.items() if running(pid)}
        print(f"stopped in {stop_s:.1f} s; {len(seen)} processes were running below up")
        assert code == 0, out.read_text()
        assert stop_s < STOPPED_S
        assert not left, f"still running after Ctrl-C: {left}"
        assert not answers(broker_url)
        text = out.read_text()
        assert text.index("beat stopped") < text.index("worker stopped")
        assert text.index("worker stopped") < text.index("stopping the private redis-server")
        assert "everything stopped" in text
    except BaseException:
        print(out.read_text())
        for log in sorted((folder / "var" / "log").glob("*.log")):
            print(f"===== {log.name} =====\n{log.read_text(errors='replace')[-4000:]}")
        raise
    finally:
        if up.poll() is None:
            up.kill()  # its children get SIGTERM from the kernel (parent-death signal)
            up.wait(10)
        for pid in seen:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if running(pid):
                    os.kill(pid, signal.SIGKILL)
