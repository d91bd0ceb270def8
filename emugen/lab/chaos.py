"""`emugen chaos`: a soak at 0.5 s while workers are killed, Redis restarts and SQLite is locked.

The plan (seeded, so a run can be repeated): every few seconds `kill -9` the main process of a
worker, preferably one whose pool process is mid-task (a random one if none is busy within a
second), and start it again a second later; the orphaned pool process finishes its task and is
killed at the restart; every other kill takes the pool process too, as a crash of the machine
would, so the task dies half done and only the broker and the reaper can bring it back; once,
stop the redis-server, which runs without RDB or AOF so every queued message is lost, and
start a fresh one on the same port; once, hold SQLite's write lock
from a separate connection (BEGIN IMMEDIATE, sleep, COMMIT) for a few seconds, below the 30 s
busy timeout. The fleet runs with `stuck_after: 3 s` and `reaper_interval: 1 s` so the reaper
recovers lost messages quickly.

Afterwards the store criteria of a soak must hold exactly (no lost batch, no duplicate row,
100 % reconciliation, gold equal to a recomputation). RSS and latency are reported but not
judged: restarted processes start from scratch and the disturbances are the latency. Ticks
that were queued in the Redis that restarted are gone (never generated, consuming no seq);
the tick accounting is reported, not judged.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from emugen.fleet.supervisor import wait_for
from emugen.lab.processes import PrivateFleet
from emugen.lab.soak import SoakOptions, SoakResult, run_soak

CHAOS_FLEET = {"stuck_after": 3, "reaper_interval": 1}
RESTART_AFTER_S = 1.0
BUSY_WAIT_S = 1.0


@dataclass
class Action:
    at: float
    kind: str  # kill | restart | redis | lock
    role: str = ""


@dataclass
class Chaos:
    """The plan, and its execution from the soak's sampling loop (no threads fork)."""

    duration: float
    workers: list[str]
    seed: int = 1
    lock_s: float = 5.0
    kill_every: float = 10.0
    marks: list[tuple[float, str]] = field(default_factory=list)
    plan: list[Action] = field(default_factory=list)
    _locker: threading.Thread | None = None
    _rng: random.Random = field(default_factory=random.Random)
    _kills: int = 0

    def __post_init__(self) -> None:
        rng = self._rng = random.Random(self.seed)
        redis_at, lock_at = 0.45 * self.duration, 0.65 * self.duration
        t = 0.1 * self.duration
        while t < 0.85 * self.duration:
            if min(abs(t - redis_at), abs(t - lock_at)) > 3:
                self.plan.append(Action(t, "kill", rng.choice(self.workers)))
            t += self.kill_every * rng.uniform(0.7, 1.3)
        self.plan += [Action(redis_at, "redis"), Action(lock_at, "lock")]
        self.plan.sort(key=lambda a: a.at)

    def step(self, t: float, fleet: PrivateFleet) -> None:
        due = [a for a in self.plan if a.at <= t]
        self.plan = [a for a in self.plan if a.at > t]
        for action in due:
            self._do(action, t, fleet)  # may plan more (a restart, a deferred kill)
        self.plan.sort(key=lambda a: a.at)

    def _do(self, action: Action, t: float, fleet: PrivateFleet) -> None:
        if action.kind == "kill":
            # aim at a worker in the middle of a task, waiting up to a second for one
            busy = [r for r in self.workers if fleet.busy(r)]
            if not busy and t < action.at + BUSY_WAIT_S:
                self.plan.append(action)  # try again on the next step
                return
            role = self._rng.choice(busy) if busy else action.role
            if not fleet.children[role].alive():
                return  # still down from an earlier kill
            self._kills += 1
            whole = self._kills % 2 == 0  # every other kill takes the pool process too
            pid = fleet.kill(role, group=whole)
            what = "main and pool processes" if whole else "main process"
            state = "mid-task" if busy else "idle"
            self.marks.append((t, f"kill -9 {role} {what} (pid {pid}, {state})"))
            self.plan.append(Action(t + RESTART_AFTER_S, "restart", role))
        elif action.kind == "restart":
            fleet.reap_orphans(action.role)
            fleet.start_child(action.role, wait=False)
            self.marks.append((t, f"restart {action.role}"))
        elif action.kind == "redis":
            started = time.monotonic()
            fleet.restart_redis()
            self.marks.append(
                (
                    t,
                    f"redis-server restarted (queues lost), down for "
                    f"{time.monotonic() - started:.1f} s",
                )
            )
        elif action.kind == "lock":
            self._locker = threading.Thread(target=self._hold_lock, args=(fleet, t), daemon=True)
            self._locker.start()

    def _hold_lock(self, fleet: PrivateFleet, t: float) -> None:
        path = make_url(fleet.database_url).database
        assert path is not None, "a soak's store is always a SQLite file (soak.db in its folder)"
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            waited = time.monotonic()
            conn.execute("BEGIN IMMEDIATE")
            got = time.monotonic()
            time.sleep(self.lock_s)
            conn.execute("COMMIT")
            self.marks.append(
                (
                    t,
                    f"SQLite write lock held {time.monotonic() - got:.1f} s "
                    f"(waited {got - waited:.1f} s for it)",
                )
            )
        finally:
            conn.close()

    def finish(self, fleet: PrivateFleet) -> None:
        """Run what is still pending (restarts), release the lock, every worker alive."""
        for action in [a for a in self.plan if a.kind == "restart"]:
            self._do(action, action.at, fleet)
        self.plan.clear()
        if self._locker is not None:
            self._locker.join(self.lock_s + 35)
        for role in fleet.workers:
            if not fleet.children[role].alive():
                fleet.reap_orphans(role)
                fleet.start_child(role, wait=False)
        wait_for(
            lambda: all(fleet.children[r].alive() for r in fleet.workers),
            30,
            "every worker to be running again",
        )


@dataclass(frozen=True)
class Faults:
    """How hard a chaos run hits: its seed, how long SQLite stays locked, how often workers die."""

    seed: int = 1
    lock_s: float = 5.0
    kill_every: float = 10.0


def run_chaos(
    duration: float,
    out: Path,
    *,
    interval: float = 0.5,
    workers: int = 2,
    faults: Faults = Faults(),
    progress=lambda _: None,
) -> SoakResult:  # noqa: ANN001
    options = SoakOptions(
        duration=duration,
        interval=interval,
        workers=workers,
        out=out,
        fleet=dict(CHAOS_FLEET),
        judge_series=False,
        title="chaos",
    )
    roles = [f"worker{i}" for i in range(1, workers + 1)]
    chaos = Chaos(
        duration, roles, seed=faults.seed, lock_s=faults.lock_s, kill_every=faults.kill_every
    )
    return run_soak(options, chaos, progress)
