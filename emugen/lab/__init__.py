"""The lab: the proof tools (bench, soak, chaos, verdicts), apart from the product.

Each benchmark figure is printed beside a baseline measured in the same run. Nothing here is
imported by the product, and the lab never imports the CLI (emugen.cli registers lab.cli).

May import everything below it, and web (the benches drive a real dashboard).
"""

from __future__ import annotations

import resource
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emugen.settings import Settings, parse_settings


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of `repeat` runs: the figure least disturbed by a noisy machine."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_settings(seed: int = 42) -> Settings:
    return parse_settings(
        {
            "mode": "production",
            "seed": seed,
            "clock": {"kind": "simulated", "start": "2026-01-01T00:00:00Z"},
        },
        env=False,
    )


@contextmanager
def private_database(database: str | None, folder: Path, name: str = "fleet") -> Iterator[str]:
    """A fresh database URL: a SQLite file in `folder`, or a private PostgreSQL schema."""
    if database is None:
        yield f"sqlite:///{folder / name}.db"
        return
    if not database.startswith("postgres"):
        yield database
        return
    from sqlalchemy import text

    from emugen.db.session import make_engine

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(database)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    joiner = "&" if "?" in database else "?"
    try:
        yield f"{database}{joiner}options=-csearch_path%3D{schema}"
    finally:
        from emugen.db.session import dispose_engines

        dispose_engines(lambda url: schema in url)
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
