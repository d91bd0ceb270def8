"""Running examples/spark/job.py from tests: the skip rule, the subprocess, waiting on it."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

JOB = Path(__file__).resolve().parents[2] / "examples" / "spark" / "job.py"
WAIT = 420  # seconds: Spark starts in ~15 s on a quiet machine, far slower on a busy one


def spark_or_skip() -> None:
    missing = []
    if shutil.which("java") is None:
        missing.append("java (Debian: apt-get install openjdk-17-jre-headless)")
    if importlib.util.find_spec("pyspark") is None:
        missing.append("pyspark (pip install -e '.[spark]', which scripts/test.sh does)")
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the Spark example cannot run: missing {', '.join(missing)}")
        pytest.skip(f"the Spark example needs {', '.join(missing)}; CI runs it")


@contextlib.contextmanager
def job(out: Path, landing: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """The job as a subprocess; its log is shown if the test fails, and it never outlives it."""
    log = out.parent / f"{out.name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, str(JOB), str(landing), "--out", str(out), *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    except BaseException:
        print(log.read_text(errors="replace")[-6000:])
        raise
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its own group: the job and its JVM
            process.wait()


def wait_for(done: Callable[[], bool], process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not done():
        assert process.poll() is None, f"the job exited ({process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} after {WAIT} s"
        time.sleep(1)
