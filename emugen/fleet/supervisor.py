"""Child processes for `emugen up`, the lab's private fleet and the integration tests.

Each child runs in its own session (so a signal reaches its pool children too), logs to a file
and dies with the parent that started it (broker.child_options). One `wait_for` polls for
readiness; `stop` asks politely, then kills the whole group after a grace. A port can be served
by somebody else's server: `serves_fleet` and `flower_accepts` tell ours apart.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from emugen.errors import FleetStartError
from emugen.fleet.broker import child_options

T = TypeVar("T")


def wait_for(probe: Callable[[], T], timeout: float, what: str, every: float = 0.1) -> T:
    """Poll `probe` until it returns something truthy; raise naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise FleetStartError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def spawn(
    args: Sequence[str], log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `args` in a session of its own, output appended to `log`, no stdin."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(args),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            **child_options(),
        )


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Signal a child's whole session: the child and whatever it left behind (pool children);
    a group id is not reused while any member lives, so this never hits a stranger."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Signal the process (a worker then stops its own pool), wait, then kill its group."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            proc.wait(10)
        except ProcessLookupError:
            pass
    kill_group(proc.pid)  # orphaned pool children of a killed main process


def terminate_together(
    procs: Sequence[subprocess.Popen[bytes]],
    timeout: float,
    hurry: Callable[[], bool] = lambda: False,
) -> dict[int, float]:
    """SIGTERM every live process at once and wait until all exited, `timeout` passed or
    `hurry()` says to stop waiting; returns the seconds each exited one took, by pid.

    Stragglers are left running: the caller decides how to report and kill them.
    """
    live = [p for p in procs if p.poll() is None]
    for proc in live:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    began = time.monotonic()
    took: dict[int, float] = {}
    while True:
        for proc in live:
            if proc.pid not in took and proc.poll() is not None:
                took[proc.pid] = time.monotonic() - began
        if len(took) == len(live) or time.monotonic() - began >= timeout or hurry():
            return took
        time.sleep(0.05)


def ended(returncode: int) -> str:
    """How a process ended, in words: 'exited with code 1', 'was killed by SIGKILL'."""
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


FLEET_HEADER = "X-Emugen-Fleet"  # the dashboard's answer: the id `emugen up` gave this run
FLEET_ENV = "EMUGEN_FLEET_ID"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def _get(url: str, headers: Mapping[str, str], timeout: float) -> tuple[int, dict[str, str]]:
    """(status, headers) of GET `url`; (0, {}) when nothing answers."""
    request = urllib.request.Request(url, headers=dict(headers))
    try:
        with _DIRECT.open(request, timeout=timeout) as response:
            return response.status, dict(response.headers.items())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items())
    except (OSError, ValueError):
        return 0, {}


def serves_fleet(url: str, fleet_id: str, timeout: float = 2.0) -> bool:
    """True when the emugen dashboard at `url` belongs to the fleet `fleet_id` (its header).

    Every response carries the header: a static file is the cheapest, where /api/health asks
    the database and the workers (slow while they start)."""
    _, headers = _get(f"{url}/static/dashboard.css", {}, timeout)
    return {k.lower(): v for k, v in headers.items()}.get(FLEET_HEADER.lower()) == fleet_id


def flower_accepts(url: str, user: str, password: str, timeout: float = 2.0) -> bool:
    """True when the server at `url` lets in `user:password` and nobody else: a Flower with the
    login `emugen up` made (a random password), not one that lets everyone in."""

    def status(secret: str) -> int:
        token = base64.b64encode(f"{user}:{secret}".encode()).decode()
        return _get(url, {"Authorization": f"Basic {token}"}, timeout)[0]

    return status(password) == 200 and status(password + "-not-it") == 401
