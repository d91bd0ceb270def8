"""A store's batches landed one at a time by emugen's real landing zone, and its truth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select

from emugen.db.models import BatchRow, BronzeRecord, InjectedDefect
from emugen.db.session import read_session
from emugen.settings import Landing
from emugen.sinks.lander import land


@dataclass(frozen=True)
class Truth:
    """What the store says a consumer should have done, keyed by (batch_id, row_no)."""

    bronze: dict[tuple[str, int], str]  # every landed row -> its stream
    defects: dict[tuple[str, int], str]  # defective rows -> expected reason


def land_batch(engine: Engine, root: Path, batch_id: str) -> Path:
    """Land one bronze batch as Parquet (+ manifest) through the real sink; its data file."""
    landed = land(engine, Landing(root=str(root), format="parquet"), batch_id, retry_now=True)
    assert landed is not None, f"{batch_id} did not land in {root}"
    return root / landed.path


def landed_order(engine: Engine) -> list[str]:
    """Batch ids in the order emugen landed them in bronze (companies first in each round)."""
    with read_session(engine) as session:
        return list(
            session.scalars(
                select(BatchRow.batch_id).order_by(BatchRow.bronze_at, BatchRow.batch_id)
            )
        )


def truth(engine: Engine) -> Truth:
    with read_session(engine) as session:
        streams = dict(session.execute(select(BatchRow.batch_id, BatchRow.stream)).all())
        bronze = {
            (b, r): streams[b]
            for b, r in session.execute(select(BronzeRecord.batch_id, BronzeRecord.row_no))
        }
        defects = {
            (b, r): reason
            for b, r, reason in session.execute(
                select(
                    InjectedDefect.batch_id, InjectedDefect.row_no, InjectedDefect.expected_reason
                )
            )
        }
    return Truth(bronze, defects)
