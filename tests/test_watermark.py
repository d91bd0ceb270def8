"""The company watermark and what silver needs for it: planned ids recorded at landing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import select

from emugen.db.models import BatchRow, PlannedCompany, SilverCompany
from emugen.db.session import read_session, write_session
from emugen.generate import BatchSpec
from emugen.generate.companies import company_traits
from emugen.pipeline import silver
from emugen.pipeline.bronze import generate_and_land
from emugen.pipeline.watermark import company_watermark
from tests.conftest import make_settings

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_company_batch_records_the_ids_it_planned_in_the_landing_transaction(engine):
    landed = generate_and_land(engine, make_settings(), "companies", T0)
    with read_session(engine) as session:
        batch = session.get(BatchRow, landed.batch_id)
        spec = BatchSpec.model_validate_json(batch.spec)
        planned = list(
            session.scalars(
                select(PlannedCompany.company_id)
                .where(PlannedCompany.batch_id == landed.batch_id)
                .order_by(PlannedCompany.row_no)
            )
        )
    ordinals = np.arange(batch.first_ordinal, batch.first_ordinal + batch.ordinal_count)
    assert planned == company_traits(spec.seed, ordinals, spec.company_shape).company_ids
    assert len(planned) == batch.ordinal_count > 0


def test_silver_excludes_exactly_the_planned_companies_it_did_not_take(engine):
    dirty = make_settings(companies={"quality": {"rate": 0.5}})
    landed = generate_and_land(engine, dirty, "companies", T0)
    with write_session(engine) as session:
        silver.run(session, landed.batch_id)
    with read_session(engine) as session:
        batch = session.get(BatchRow, landed.batch_id)
        planned = dict(
            session.execute(
                select(PlannedCompany.row_no, PlannedCompany.company_id).where(
                    PlannedCompany.batch_id == landed.batch_id
                )
            ).all()
        )
        taken = set(session.scalars(select(SilverCompany.company_id)))
        excluded = json.loads(batch.excluded_ordinals)
        watermark = company_watermark(session)
    missing = [batch.first_ordinal + n for n, cid in sorted(planned.items()) if cid not in taken]
    assert excluded == missing and missing  # a rate of 0.5 always loses a company
    assert watermark == (batch.first_ordinal + batch.ordinal_count, tuple(missing))


def test_a_mark_is_parsed_once_per_text_and_a_written_mark_is_never_parsed(engine, monkeypatch):
    from emugen.pipeline import watermark
    from emugen.pipeline.runner import run_pipeline

    run_pipeline(engine, make_settings(companies={"quality": {"rate": 0.5}}), 3)
    parses = []
    real_loads = json.loads
    monkeypatch.setattr(watermark.json, "loads", lambda raw: parses.append(raw) or real_loads(raw))
    watermark._PARSED.clear()
    with write_session(engine) as session:
        first = company_watermark(session)  # reads the settled mark: one parse
        assert company_watermark(session) == first  # the same text: no parse
    assert len(parses) == 1
    with write_session(engine) as session:  # a mark it writes is kept parsed as written
        watermark.mark_settled(session, first[0] + 10, [*first[1], first[0] + 3])
        assert watermark.company_floor(session) == (first[0] + 10, (*first[1], first[0] + 3))
    assert len(parses) == 1
