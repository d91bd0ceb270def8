"""The batch page's API: a batch's records beside the truth, verdicts, paging, gold, replay."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import fakeredis
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text, update

from emugen.db.models import BatchRow, InjectedDefect, Quarantine
from emugen.db.session import engine_for, init_db, read_session, write_session
from emugen.fleet.control import clean, set_paused
from emugen.pipeline.retention import prune
from emugen.pipeline.runner import run_pipeline
from emugen.settings import load_settings
from emugen.vocabulary import DEFECTS_FOR, Stream
from emugen.web.app import create_app
from emugen.web.probe import BrokerProbe
from tests.fleet_helpers import write_config

BASE = "http://127.0.0.1:8000"


class Store:
    """Two rounds of batches; the events batches hold 300 records, 30 % of them defective,
    so each of them carries every defect type."""

    def __init__(self, folder: Path, database_url: str) -> None:
        self.config = write_config(
            folder / "emugen.yaml",
            database_url,
            size=(300, 300),
            broker_url="redis://127.0.0.1:6379/0",
        )
        self.settings = load_settings(self.config, env=False)
        self.engine = engine_for(database_url)
        init_db(self.engine)
        run_pipeline(self.engine, self.settings, 2)

    @contextmanager
    def client(self, **kwargs: Any) -> Iterator[TestClient]:
        probe = BrokerProbe(
            self.settings.broker_url,
            client=fakeredis.FakeRedis(),
            pinger=lambda: {"w@h": {"ok": "pong"}},
        )
        kwargs.setdefault("environ", {})
        app = create_app(self.config, probe=probe, **kwargs)
        with TestClient(app, base_url=BASE) as client:
            yield client


@pytest.fixture
def store(tmp_path: Path, database_url: str) -> Store:
    return Store(tmp_path, database_url)


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    """One app for every example of a fuzz test (an app per example would cost a store check
    each)."""
    with store.client() as client:
        yield client


def _all_records(
    client: TestClient, batch_id: str, problems: str = "all", size: int = 500
) -> list[dict[str, Any]]:
    rows, page = [], 1
    while True:
        got = client.get(
            f"/api/batches/{batch_id}/records",
            params={"page": page, "size": size, "problems": problems},
        )
        assert got.status_code == 200, got.text
        body = got.json()
        rows += body["items"]
        if page >= body["pages"]:
            return rows
        page += 1


def test_a_batch_with_every_defect_type_shows_each_injected_row_with_its_defect_and_caught(store):
    with store.client() as client:
        detail = client.get("/api/batches/events-000000001").json()
        rows = _all_records(client, "events-000000001")
    assert detail["status"] == "gold" and detail["worker"] == "in-process"
    assert detail["spec"]["seq"] == 1 and set(detail["work_ms"]) == {
        "generate",
        "bronze",
        "silver",
        "gold",
    }
    assert [r["row_no"] for r in rows] == list(range(300))
    injected = [r for r in rows if r["truth"]]
    assert {r["truth"]["defect"] for r in injected} == set(DEFECTS_FOR[Stream.events])
    assert len(injected) == detail["injected"] == detail["reconcile"]["caught"]
    for r in injected:
        assert r["verdict"] == "caught", r
        assert r["went"]["to"] == "quarantine"
        assert r["went"]["reason"] == r["truth"]["expected_reason"]
    clean = [r for r in rows if not r["truth"]]
    assert {r["verdict"] for r in clean} == {"clean"}
    assert all(r["went"]["to"] == "silver" and r["went"]["id"] for r in clean)
    with read_session(store.engine) as session:  # the payload is bronze's, byte for byte
        assert rows[7]["payload"] == session.scalar(
            text(
                "SELECT payload FROM bronze_records WHERE batch_id = 'events-000000001' "
                "AND row_no = 7"
            )
        )


def test_only_problems_lists_the_injected_and_quarantined_rows_in_row_order(store):
    with store.client() as client:
        everything = _all_records(client, "events-000000001")
        problems = _all_records(client, "events-000000001", "only", size=7)
    assert problems == [r for r in everything if r["verdict"] != "clean"]
    assert len(problems) > 7  # so it took several pages


def test_a_tampered_quarantine_reason_reads_mismatch_and_the_rest_stay_caught(store):
    with write_session(store.engine) as session:
        victim = session.scalars(
            select(InjectedDefect)
            .where(
                InjectedDefect.batch_id == "events-000000002",
                InjectedDefect.expected_reason != "schema_mismatch",
            )
            .order_by(InjectedDefect.row_no)
            .limit(1)
        ).one()
        row_no, defect = victim.row_no, victim.defect
        session.execute(
            update(Quarantine)
            .where(Quarantine.batch_id == victim.batch_id, Quarantine.row_no == row_no)
            .values(reason="schema_mismatch")
        )
    with store.client() as client:
        rows = _all_records(client, "events-000000002", "only")
        detail = client.get("/api/batches/events-000000002").json()
    verdicts = {r["row_no"]: r["verdict"] for r in rows}
    assert verdicts.pop(row_no) == "mismatch"
    assert set(verdicts.values()) == {"caught"}
    # the same rule as reconciliation: the batch's tally counts it as a wrong reason
    assert detail["reconcile"]["by_defect"][defect]["wrong_reason"] == 1


def test_a_clean_row_quarantined_reads_false_alarm_and_a_kept_defect_reads_escaped(store):
    with write_session(store.engine) as session:
        defect = (
            session.scalars(
                select(InjectedDefect)
                .where(InjectedDefect.batch_id == "events-000000001")
                .order_by(InjectedDefect.row_no)
                .limit(1)
            )
            .one()
            .row_no
        )
        injected = set(
            session.scalars(
                select(InjectedDefect.row_no).where(InjectedDefect.batch_id == "events-000000001")
            )
        )
        clean_row = min(set(range(300)) - injected)
        # the truth says the row is clean; quarantine says otherwise
        session.add(
            Quarantine(
                batch_id="events-000000001",
                row_no=clean_row,
                stream="events",
                reason="null_value",
                field="lat",
                detail="tampered",
            )
        )
        session.execute(
            text(
                f"DELETE FROM quarantine WHERE batch_id = 'events-000000001' AND row_no = {defect}"
            )
        )
        session.execute(
            text(
                "INSERT INTO silver_events (event_id, company_id, driver_id, "
                "truck_id, event_type, event_timestamp, event_ms, batch_id, "
                "row_no) VALUES ('x-escaped', 'c', 'd', 't', 'delivered', "
                "'2026-01-01T00:00:00.000000Z', 0, 'events-000000001', "
                f"{defect})"
            )
        )
    with store.client() as client:
        rows = {r["row_no"]: r for r in _all_records(client, "events-000000001", "only")}
    assert rows[clean_row]["verdict"] == "false_alarm"
    assert rows[defect]["verdict"] == "escaped"
    assert rows[defect]["went"] == {"to": "silver", "id": "x-escaped"}


@pytest.mark.parametrize(
    "params, field, says",
    [
        ({"page": 0}, "page", "greater than or equal to 1"),
        ({"page": -3}, "page", "greater than or equal to 1"),
        ({"page": 10**12}, "page", "less than or equal to 1000000"),
        ({"size": 0}, "size", "greater than or equal to 1"),
        ({"size": 501}, "size", "less than or equal to 500"),
        ({"problems": "some"}, "problems", "'only' or 'all'"),
    ],
)
def test_bad_paging_is_a_422_naming_the_field(store, params, field, says):
    with store.client() as client:
        got = client.get("/api/batches/events-000000001/records", params=params)
    assert got.status_code == 422
    assert field in got.json()["message"] and says in got.json()["message"]


def test_a_page_past_the_last_is_a_404_naming_the_last_page(store):
    with store.client() as client:
        last = client.get("/api/batches/events-000000001/records", params={"page": 6})
        past = client.get("/api/batches/events-000000001/records", params={"page": 7})
    assert last.status_code == 200 and len(last.json()["items"]) == 50
    assert past.status_code == 404
    assert past.json()["detail"] == (
        "page 7 is past the last page, 6 (300 rows at size 50); ask for page 1 to 6"
    )


def test_a_malformed_id_is_a_422_and_an_unknown_one_a_404(store):
    with store.client() as client:
        bad = client.get("/api/batches/events-1;drop/records")
        unknown = client.get("/api/batches/events-000000123/records")
        page = client.get("/batches/events-000000123")
    assert bad.status_code == 422 and "batch_id" in bad.json()["message"]
    assert unknown.status_code == 404
    assert unknown.json()["detail"].startswith("no batch events-000000123:")
    assert page.status_code == 404 and "no batch events-000000123" in page.text


def test_a_batch_pruned_by_retention_is_a_404_that_says_so(store):
    pruned = prune(store.engine, timedelta(days=1), now=datetime.now(UTC) + timedelta(days=2))
    assert pruned.batches == 2  # the first of each stream; the newest always stays
    with store.client() as client:
        gone = client.get("/api/batches/events-000000001/records")
        page = client.get("/batches/events-000000001")
        kept = client.get("/api/batches/events-000000002")
        never = client.get("/api/batches/events-000000003")
    assert gone.status_code == 404
    assert gone.json()["detail"].startswith(
        "batch events-000000001 was pruned by retention (keeps 1 day;"
    )
    assert page.status_code == 404 and "pruned by retention" in page.text
    assert kept.status_code == 200
    assert never.json()["detail"].startswith("no batch events-000000003")


def test_the_gold_rows_of_a_batch_add_up_to_its_silver_rows(store):
    with store.client() as client:
        events = client.get("/api/batches/events-000000001/gold").json()
        companies = client.get("/api/batches/companies-000000001/gold").json()
    with read_session(store.engine) as session:
        valid = session.get(BatchRow, "events-000000001").valid_count
        onboarded = session.get(BatchRow, "companies-000000001").valid_count
    assert sum(i["events"]["this_batch"] for i in events["items"]) == valid
    for item in events["items"]:
        assert (
            item["events"]["now"] == item["events"]["without_batch"] + item["events"]["this_batch"]
        )
        assert item["events"]["now"] >= item["events"]["this_batch"] > 0
    assert events["table"] == "gold_company_window" and events["window_seconds"] == 60
    assert sum(i["companies_onboarded"]["this_batch"] for i in companies["items"]) == onboarded
    assert companies["table"] == "gold_region_window"


def test_replay_from_the_page_regenerates_the_batch_and_says_identical(store):
    with store.client() as client:
        got = client.post("/api/batches/events-000000001/replay")
        foreign = client.post(
            "/api/batches/events-000000001/replay", headers={"Origin": "http://evil.example"}
        )
    assert got.status_code == 200
    assert got.json()["identical"] is True and got.json()["rows"] == 300
    assert got.json()["message"].startswith("events-000000001: identical")
    assert foreign.status_code == 403


def test_replay_says_different_when_bronze_was_altered(store):
    with write_session(store.engine) as session:
        session.execute(
            text(
                "UPDATE bronze_records SET payload = '{}' WHERE batch_id = "
                "'events-000000001' AND row_no = 4"
            )
        )
    with store.client() as client:
        got = client.post("/api/batches/events-000000001/replay").json()
    assert got["identical"] is False and got["differing"] == [4]
    assert "1 rows differ (row 4)" in got["message"]


def test_the_page_is_served_and_names_its_script(store):
    with store.client() as client:
        got = client.get("/batches/events-000000001")
        bad = client.get("/batches/nonsense")
    assert got.status_code == 200
    assert '<script src="/static/batch.js" defer></script>' in got.text
    assert 'data-batch-id="events-000000001"' in got.text
    assert bad.status_code == 422 and "is not a batch id" in bad.text


ANY_ID = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"(companies|events)-[0-9]{9,12}", fullmatch=True),
    st.sampled_from(["events-000000001", "companies-000000002"]),
)
ANY_QUERY = st.one_of(st.integers(min_value=-(10**20), max_value=10**20), st.text(max_size=12))


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batch_id=ANY_ID,
    page=ANY_QUERY,
    size=ANY_QUERY,
    problems=st.one_of(st.sampled_from(["only", "all"]), st.text(max_size=8)),
)
def test_no_batch_id_or_paging_input_gets_a_5xx(client, batch_id, page, size, problems):
    for path in (
        f"/api/batches/{quote(batch_id, safe='')}/records",
        f"/api/batches/{quote(batch_id, safe='')}",
        f"/batches/{quote(batch_id, safe='')}",
    ):
        got = client.get(path, params={"page": page, "size": size, "problems": problems})
        assert got.status_code < 500, (path, got.text)
        if got.status_code >= 400 and path.startswith("/api/"):
            body = got.json()
            assert body.get("message") or body.get("detail"), body


def test_the_openapi_document_describes_the_batch_endpoints_and_their_errors(store):
    with store.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
    records = paths["/api/batches/{batch_id}/records"]["get"]
    assert {"404", "422", "400"} <= set(records["responses"])
    assert {p["name"] for p in records["parameters"]} == {"batch_id", "page", "size", "problems"}
    batch_id = next(p for p in records["parameters"] if p["name"] == "batch_id")
    assert batch_id["schema"]["pattern"] == r"^(companies|events)-[0-9]{9,18}$"
    assert "403" in paths["/api/batches/{batch_id}/replay"]["post"]["responses"]
    assert (
        "get" in paths["/api/batches/{batch_id}"] and "get" in paths["/api/batches/{batch_id}/gold"]
    )
    assert "/batches/{batch_id}" not in paths  # the HTML page is not part of the API


def test_after_clean_a_pruned_id_is_no_batch_again_since_seqs_restart(store):
    prune(store.engine, timedelta(days=1), now=datetime.now(UTC) + timedelta(days=2))
    with write_session(store.engine) as session:
        set_paused(session, True)
    with write_session(store.engine) as session:
        clean(session)
    with store.client() as client:
        got = client.get("/api/batches/events-000000001")
    assert got.status_code == 404 and got.json()["detail"].startswith("no batch")


def test_off_loopback_replay_needs_the_token_but_reading_the_batch_does_not(store):
    token = "batch-page-token-0123456789"
    with store.client(host="0.0.0.0", environ={"EMUGEN_WEB_TOKEN": token}) as client:
        read = client.get("/api/batches/events-000000001/records")
        refused = client.post("/api/batches/events-000000001/replay")
        allowed = client.post(
            "/api/batches/events-000000001/replay", headers={"Authorization": f"Bearer {token}"}
        )
    assert read.status_code == 200
    assert refused.status_code == 401 and "EMUGEN_WEB_TOKEN" in refused.json()["detail"]
    assert allowed.status_code == 200 and allowed.json()["identical"] is True
