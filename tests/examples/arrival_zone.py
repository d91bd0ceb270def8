"""A store with late, redelivered and delayed events, landed in release order for the
reference consumers of tests/examples: Parquet for Spark, JSON Lines for DuckDB and dbt.

Every landed file gets a modification time one second after the one released before it, so
a file source (Spark's takes files oldest first) sees them in release order however fast
they were written. The landing zone's own lander decides that order (a delayed batch's file
right after the batch it waited for); it is read back from the store's `landed_files`.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlalchemy import Engine, select

from emugen.db.ledger import ArrivalEntry
from emugen.db.models import BatchRow, LandedFile
from emugen.db.session import init_db, make_engine, read_session
from emugen.pipeline.runner import run_pipeline
from emugen.settings import Landing
from emugen.sinks.lander import bronze_chunks, read_facts, write_files
from emugen.vocabulary import Stream
from tests.conftest import SIMULATED, make_settings

# 20-second event batches, 60-second windows: a late record (up to 90 s before its batch) or a
# delayed file (one batch behind) reaches back into windows that a watermark shorter than the
# data's lateness (or an incremental model without lookback) has already closed
ARRIVING = {
    "late": {"rate": 0.2, "max_lateness": "PT90S"},
    "redelivered": {"rate": 0.1, "max_age": 2},
    "delayed": {"rate": 0.25, "max_delay": 1},
}
QUALITY = {"quality": {"rate": 0.1}}


@dataclass(frozen=True)
class ArrivalZone:
    """The store (and a config naming it, for `emugen grade`), and its landed files."""

    folder: Path
    engine: Engine
    config: Path
    released: list[tuple[str, str]]  # (batch_id, path under the root) in release order

    def root(self, fmt: str) -> Path:
        return self.folder / f"landing-{fmt}"

    def ledger(self, condition: str) -> dict[str, set[int] | str | None]:
        """batch_id -> its row_nos under `condition` (late, redelivered) or, for delayed,
        the batch it was released after."""
        with read_session(self.engine) as session:
            rows = session.execute(
                select(
                    ArrivalEntry.batch_id, ArrivalEntry.row_no, ArrivalEntry.released_after_batch_id
                ).where(ArrivalEntry.condition == condition)
            ).all()
        if condition == "delayed":
            return {b: after for b, _, after in rows}
        out: dict[str, set[int] | str | None] = {}
        for batch_id, row_no, _ in rows:
            held = out.setdefault(batch_id, set())
            assert isinstance(held, set)
            held.add(row_no)
        return out

    def stage(self, fmt: str, target: Path, upto: int) -> None:
        """Copy the first `upto` released files (and their manifests) into `target`."""
        root = self.root(fmt)
        for batch_id, path in self.released[:upto]:
            for rel in (_as(path, fmt), f"_manifests/{batch_id.split('-')[0]}/{batch_id}.json"):
                if not (target / rel).exists():
                    (target / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(root / rel, target / rel)


def _as(path: str, fmt: str) -> str:
    return str(Path(path).with_suffix(f".{fmt}"))


def build_zone(folder: Path, rounds: int = 10, size: int = 30, seed: int = 20261207) -> ArrivalZone:
    """One companies batch, then `rounds` event batches with the arrival conditions on (few
    files: a streaming consumer's micro-batch per file costs seconds), landed as Parquet
    through the real lander, then as JSON Lines in the same order."""
    url = f"sqlite:///{folder / 'store.db'}"
    engine = make_engine(url)
    init_db(engine)
    settings = make_settings(
        seed=seed,
        companies={"quality": {"rate": 0.05}},
        events={**QUALITY, "arrival": ARRIVING, "emulated": {"interval": "20s"}},
        landing={"enabled": True, "root": str(folder / "landing-parquet"), "format": "parquet"},
    )
    run_pipeline(engine, settings, 1, (Stream.companies,), size=20)
    run_pipeline(engine, settings, rounds, (Stream.events,), size=size)
    with read_session(engine) as session:
        released = [
            (b, p)
            for b, p in session.execute(
                select(LandedFile.batch_id, LandedFile.path).order_by(
                    LandedFile.landed_at, LandedFile.batch_id
                )
            )
        ]
        assert session.scalar(select(BatchRow.batch_id).limit(1)) is not None
    jsonl = Landing(root=str(folder / "landing-jsonl"), format="jsonl")
    with engine.connect() as conn:
        for batch_id, _ in released:
            facts = read_facts(conn, batch_id)
            assert facts is not None
            write_files(jsonl, facts, bronze_chunks(conn, batch_id))
    start = time.time() - 3600
    for fmt in ("parquet", "jsonl"):
        for i, (_, path) in enumerate(released):
            os.utime(folder / f"landing-{fmt}" / _as(path, fmt), (start + i, start + i))
    config = folder / "emugen.yaml"
    config.write_text(yaml.safe_dump({"database_url": url, "clock": SIMULATED}))
    return ArrivalZone(folder, engine, config, released)


def grade_gold(zone: ArrivalZone, gold: Path | str, policy: str, *flags: str) -> tuple[int, dict]:
    """`emugen grade --gold GOLD --policy POLICY --json` against the zone's store: the exit
    code and the `gold` object."""
    import json

    from click.testing import CliRunner

    from emugen.cli import main

    result = CliRunner().invoke(
        main,
        [
            "grade",
            "--gold",
            str(gold),
            "--policy",
            policy,
            *flags,
            "--config",
            str(zone.config),
            "--json",
        ],
    )
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.output)["gold"]


def named(grade: dict, *causes: str) -> set[tuple[str, int, str]]:
    """(batch_id, row_no, event_id) of every example the wrong cells give for `causes`."""
    return {
        (e["batch_id"], e["row_no"], e["event_id"])
        for cell in grade["wrong_cells"]
        for c in cell["causes"]
        if c["cause"] in causes
        for e in c["examples"]
    }
