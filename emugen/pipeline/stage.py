"""The stage contract: every stage is `run(session, batch_id) -> StageResult`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class StageResult:
    """What one stage did to one batch: rows it read and wrote, how long, and a short note."""

    batch_id: str
    stage: str
    rows_in: int
    rows_out: int
    ms: float
    note: str = ""


class Stage(Protocol):
    """A stage's `run`: the runner, the tasks and the reaper call stages only through it."""

    def __call__(self, session: Session, batch_id: str) -> StageResult: ...


def since_ms(started: float) -> float:
    """Milliseconds since a `time.perf_counter()` reading."""
    return (time.perf_counter() - started) * 1000
