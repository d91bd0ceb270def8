"""The stage contract: silver, gold and reconcile each answer `run(session, batch_id)`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select

from emugen.db.models import BronzeRecord, InjectedDefect, PlannedCompany
from emugen.db.session import read_session, write_session
from emugen.errors import BatchNotFound, StageOrderError
from emugen.pipeline import bronze, gold, reconcile, silver
from emugen.pipeline.bronze import generate_and_land
from emugen.pipeline.stage import StageResult
from tests.conftest import make_settings

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def dirty():
    return make_settings(companies={"quality": {"rate": 0.3}}, events={"quality": {"rate": 0.3}})


def test_each_stage_reports_rows_in_and_out_for_one_batch(engine, dirty):
    landed = generate_and_land(engine, dirty, "companies", T0)
    with write_session(engine) as session:
        refined = silver.run(session, landed.batch_id)
    with write_session(engine) as session:
        built = gold.run(session, landed.batch_id)
    with write_session(engine) as session:
        tallied = reconcile.run(session, landed.batch_id)
    assert all(isinstance(r, StageResult) for r in (refined, built, tallied))
    assert [r.stage for r in (refined, built, tallied)] == ["silver", "gold", "reconcile"]
    assert refined.rows_in == landed.record_count and 0 < refined.rows_out < refined.rows_in
    assert built.rows_in == refined.rows_out and built.rows_out >= 1
    assert tallied.rows_in > 0 and tallied.rows_out == tallied.rows_in and tallied.note == "ok"


def test_a_stage_run_again_says_the_work_was_already_done(engine, dirty):
    landed = generate_and_land(engine, dirty, "companies", T0)
    with write_session(engine) as session:
        first = silver.run(session, landed.batch_id)
    with write_session(engine) as session:
        again = silver.run(session, landed.batch_id)
    assert again.note == "already in silver" and first.note == ""
    assert (again.rows_in, again.rows_out) == (first.rows_in, first.rows_out)


def test_stages_out_of_order_or_on_a_missing_batch_raise_errors_of_the_tree(engine, dirty):
    landed = generate_and_land(engine, dirty, "companies", T0)
    with (
        pytest.raises(StageOrderError, match="gold needs a silver batch"),
        write_session(engine) as session,
    ):
        gold.run(session, landed.batch_id)
    with pytest.raises(BatchNotFound, match="emugen status"), write_session(engine) as session:
        silver.run(session, "companies-000000099")


_LANDED = (
    (BronzeRecord, BronzeRecord.payload),
    (InjectedDefect, InjectedDefect.defect),
    (PlannedCompany, PlannedCompany.company_id),
)


def _landed_rows(engine, batch_id):
    with read_session(engine) as session:
        return [
            session.execute(
                select(table.row_no, column)
                .where(table.batch_id == batch_id)
                .order_by(table.row_no)
            ).all()
            for table, column in _LANDED
        ]


def test_bronze_lands_a_drafted_batch_again_byte_for_byte_from_its_recorded_spec(engine, dirty):
    landed = generate_and_land(engine, dirty, "companies", T0)
    before = _landed_rows(engine, landed.batch_id)
    with write_session(engine) as session:
        again = bronze.run(session, landed.batch_id)
        for table, _ in _LANDED:
            session.execute(delete(table).where(table.batch_id == landed.batch_id))
    assert again.note == "already in bronze"
    assert _landed_rows(engine, landed.batch_id) == [[], [], []]
    with write_session(engine) as session:
        relanded = bronze.run(session, landed.batch_id)
    assert (relanded.rows_in, relanded.rows_out) == (landed.record_count, landed.record_count)
    assert _landed_rows(engine, landed.batch_id) == before and all(before)
