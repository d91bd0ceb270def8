"""The dashboard's HTTP API: every endpoint, bad input, security defaults, SSE, and a fuzz."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fakeredis
import httpx
import pytest
import yaml
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from emugen.cli import main
from emugen.db.models import BatchRow
from emugen.db.session import engine_for, init_db, write_session
from emugen.errors import InsecureBinding
from emugen.fleet.backpressure import priority_keys
from emugen.fleet.broker import free_port
from emugen.fleet.control import record_reload, record_skip
from emugen.pipeline.runner import run_pipeline
from emugen.settings import load_settings
from emugen.vocabulary import Stream
from emugen.web import state as web_state
from emugen.web import stream as web_stream
from emugen.web.app import create_app
from emugen.web.probe import BrokerProbe
from tests.fleet_helpers import write_config

BASE = "http://127.0.0.1:8000"
TOKEN = "t0ken-for-tests-0123456789"
PONG = {"worker1@host": {"ok": "pong"}}


class Store:
    """A config file, its database holding `rounds` batches of each stream, and a broker stub."""

    def __init__(self, folder: Path, database_url: str, rounds: int = 3) -> None:
        self.config = write_config(
            folder / "emugen.yaml", database_url, broker_url="redis://127.0.0.1:6379/0"
        )
        self.settings = load_settings(self.config, env=False)
        self.engine = engine_for(database_url)
        init_db(self.engine)
        if rounds:
            run_pipeline(self.engine, self.settings, rounds)
        self.redis = fakeredis.FakeRedis()

    def probe(self, pinger: Any = lambda: PONG) -> BrokerProbe:
        return BrokerProbe(self.settings.broker_url, client=self.redis, pinger=pinger)

    def app(self, **kwargs: Any) -> Any:
        kwargs.setdefault("probe", self.probe())
        kwargs.setdefault("environ", {})
        return create_app(self.config, **kwargs)

    @contextmanager
    def client(self, **kwargs: Any) -> Iterator[TestClient]:
        with TestClient(self.app(**kwargs), base_url=BASE) as client:
            yield client

    def add(self, rounds: int = 1, streams: tuple[Stream, ...] = (Stream.companies,)) -> None:
        run_pipeline(self.engine, self.settings, rounds, streams)


@pytest.fixture
def store(tmp_path: Path, database_url: str) -> Store:
    """On SQLite and PostgreSQL: the queries behind the read endpoints."""
    return Store(tmp_path, database_url)


@pytest.fixture
def lite(tmp_path: Path) -> Store:
    """On SQLite only: control, security and transport, which do not depend on the backend."""
    return Store(tmp_path, f"sqlite:///{tmp_path / 'emugen.db'}")


# -- health ----------------------------------------------------------------------------------


def test_health_reports_mode_streams_throughput_queues_and_live_workers(store):
    for key, n in zip(priority_keys("pipeline"), (2, 1, 0, 0), strict=True):
        for _ in range(n):
            store.redis.rpush(key, b"m")
    with store.client() as client:
        h = client.get("/api/health").json()
    assert h["status"] == "running" and h["reasons"] == []
    assert h["generation_mode"] == "emulated" and h["paused"] is False
    assert h["config"]["streams"]["companies"] == {
        "interval_s": 2.0,
        "min_batch_size": 5,
        "max_batch_size": 5,
    }
    companies = h["streams"]["companies"]
    assert companies["batches"] == companies["gold"] == 3 and companies["records"] == 15
    assert 0 <= companies["age_s"] < 60 and companies["last_batch_at"]
    assert h["throughput"]["batches"] == 6 and h["throughput"]["batches_per_minute"] > 0
    assert h["queues"] == {"generate": 0, "pipeline": 3}
    assert h["broker"]["ok"] is True
    assert h["workers"]["alive"] == ["worker1@host"] and h["workers"]["ok"] is True
    assert h["skips"] == {} and h["in_flight"] == 0


def test_health_is_degraded_not_a_5xx_when_the_broker_is_down(lite):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    probe = BrokerProbe(f"redis://127.0.0.1:{port}/0")
    with lite.client(probe=probe) as client:
        response = client.get("/api/health")
    assert response.status_code == 200
    h = response.json()
    assert h["status"] == "degraded" and h["queues"] is None and h["broker"]["ok"] is False
    assert any(r.startswith("broker unreachable") for r in h["reasons"])


def test_health_says_degraded_when_no_worker_answers_or_beat_rejected_an_edit(lite):
    with write_session(lite.engine) as session:
        record_reload(session, str(lite.config), problems=["seed: got -1; allowed: >= 0"])
    with lite.client(probe=lite.probe(pinger=lambda: None)) as client:
        h = client.get("/api/health").json()
    assert h["status"] == "degraded"
    assert "no worker answered a ping" in h["reasons"]
    assert h["last_rejection"]["problems"] == ["seed: got -1; allowed: >= 0"]
    assert any("beat rejected the last config edit" in r for r in h["reasons"])


def test_health_says_paused_while_paused(lite):
    with lite.client() as client:
        client.post("/api/pause")
        h = client.get("/api/health").json()
    assert h["status"] == "paused" and h["paused"] is True and h["paused_since"]


def test_a_database_that_stops_answering_makes_health_degraded_and_reads_a_503(lite):
    from sqlalchemy import create_engine

    app = lite.app()
    app.state.web.engine = create_engine(f"sqlite:///{lite.config.parent}/missing/dir/x.db")
    with TestClient(app, base_url=BASE) as client:
        health = client.get("/api/health")
        batches = client.get("/api/batches")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert health.json()["reasons"][0].startswith("database unreachable")
    assert batches.status_code == 503 and "database unreachable" in batches.json()["detail"]


# -- batches, quality, latency ---------------------------------------------------------------


def test_batches_come_newest_first_in_pages_with_stage_times_and_latencies(store):
    with store.client() as client:
        first = client.get("/api/batches", params={"limit": 4}).json()
        rest = client.get("/api/batches", params={"limit": 4, "offset": 4}).json()
        events = client.get("/api/batches", params={"stream": "events", "status": "gold"}).json()
    assert first["total"] == 6 and first["next_offset"] == 4 and rest["next_offset"] is None
    items = first["items"] + rest["items"]
    assert [b["batch_id"] for b in items] == [
        "events-000000003",
        "companies-000000003",
        "events-000000002",
        "companies-000000002",
        "events-000000001",
        "companies-000000001",
    ]
    b = items[0]
    assert b["status"] == "gold" and b["gold_at"] >= b["silver_at"] >= b["bronze_at"]
    assert set(b["latency_ms"]) == {"bronze", "silver", "gold", "end_to_end"}
    assert b["latency_ms"]["end_to_end"] >= b["latency_ms"]["gold"] >= 0
    assert events["total"] == 3 and {b["stream"] for b in events["items"]} == {"events"}


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"limit": 0}, "query.limit", "greater than or equal to 1"),
        ({"limit": 501}, "query.limit", "less than or equal to 500"),
        ({"limit": "ten"}, "query.limit", "valid integer"),
        ({"offset": -1}, "query.offset", "greater than or equal to 0"),
        ({"stream": "trucks"}, "query.stream", "'companies' or 'events'"),
        ({"status": "done"}, "query.status", "'bronze', 'silver', 'gold' or 'failed'"),
    ],
)
def test_bad_paging_is_a_422_naming_the_field_and_what_it_allows(lite, params, field, says):
    with lite.client() as client:
        response = client.get("/api/batches", params=params)
    assert response.status_code == 422
    assert field in response.json()["message"] and says in response.json()["message"]


def test_quality_shows_defect_shares_per_stream_and_every_defect_caught(store):
    with store.client() as client:
        q = client.get("/api/quality").json()
    companies = q["streams"]["companies"]
    assert companies["records"] == 15 and companies["injected"] > 0
    assert companies["defect_pct"] == round(100 * companies["injected"] / 15, 2)
    assert all(t["pct"] > 0 for s in q["streams"].values() for t in s["by_type"].values())
    assert q["injected"] == q["caught"] > 0 and q["caught_pct"] == 100.0
    assert q["escaped"] == 0 and q["false_alarm_total"] == 0 and q["ok"] and q["alarms"] == []
    assert all(t["caught_pct"] == 100.0 for t in q["by_defect"].values())


def test_latency_gives_p50_p95_max_per_layer_over_the_recent_batches(store):
    with store.client() as client:
        lat = client.get("/api/latency", params={"batches": 4}).json()
        one = client.get("/api/latency", params={"batches": 3, "stream": "events"}).json()
        bad = client.get("/api/latency", params={"batches": 0})
    assert lat["window"]["count"] == 4 and lat["unit"] == "ms"
    for layer in ("bronze", "silver", "gold", "end_to_end"):
        s = lat["layers"][layer]
        assert s["n"] == 4 and 0 <= s["p50"] <= s["p95"] <= s["max"]
    assert set(lat["work"]) == {"generate", "bronze", "silver", "gold"}
    assert one["window"]["count"] == 3 and one["window"]["stream"] == "events"
    assert bad.status_code == 422 and "query.batches" in bad.json()["message"]


# -- control -----------------------------------------------------------------------------------


def test_pause_and_resume_flip_the_shared_flag_and_say_whether_it_changed(lite):
    with lite.client() as client:
        assert client.post("/api/pause").json() == {
            "paused": True,
            "changed": True,
            "message": "paused: beat skips every tick",
        }
        assert client.post("/api/pause").json()["changed"] is False
        assert client.post("/api/resume").json()["message"] == "resumed"
        assert client.post("/api/resume").json()["message"] == "already running"
        assert client.get("/api/health").json()["status"] == "running"


def test_mode_rewrites_the_config_file_which_the_next_snapshot_shows(lite):
    text = lite.config.read_text()
    lite.config.write_text("# my fleet\n" + text)
    with lite.client() as client:
        response = client.post("/api/mode", json={"mode": "production"})
        again = client.post("/api/mode", json={"mode": "production"})
        health = client.get("/api/health").json()
    assert response.status_code == 200
    assert response.json()["before"] == "emulated" and response.json()["after"] == "production"
    assert again.json()["changed"] is False and again.json()["message"] == "already production"
    on_disk = lite.config.read_text()
    assert on_disk.startswith("# my fleet\n") and yaml.safe_load(on_disk)["mode"] == "production"
    assert health["generation_mode"] == "production"
    assert health["config"]["streams"]["companies"]["interval_s"] == 3600


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"mode": "turbo"}, "body.mode: Input should be 'production' or 'emulated' (got 'turbo')"),
        ({"mode": 3}, "body.mode: Input should be 'production' or 'emulated' (got 3)"),
        ({"mode": None}, "body.mode: Input should be 'production' or 'emulated'"),
        ({}, "body.mode: Field required"),
        ({"mode": "emulated", "speed": 11}, "body.speed: Extra inputs are not permitted"),
        (["production"], "body: Input should be a valid dictionary"),
        ("production", "body: Input should be a valid dictionary"),
    ],
)
def test_a_bad_mode_body_is_a_422_naming_the_field_and_the_allowed_values(lite, body, says):
    before = lite.config.read_text()
    with lite.client() as client:
        response = client.post("/api/mode", json=body)
    assert response.status_code == 422
    assert says in response.json()["message"]
    assert lite.config.read_text() == before


def test_a_body_that_is_not_json_is_a_422(lite):
    with lite.client() as client:
        response = client.post(
            "/api/mode", content=b"{mode: production", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 422 and "JSON" in response.json()["message"]


def test_a_50_mb_body_is_refused_with_a_413_before_it_is_read(lite):
    before = lite.config.read_bytes()
    with lite.client() as client:
        declared = client.post(
            "/api/mode",
            content=b'{"mode": "' + b"x" * 50_000_000 + b'"}',
            headers={"Content-Type": "application/json"},
        )
        chunked = client.post(
            "/api/mode",
            content=(b"x" * 65536 for _ in range(800)),
            headers={"Content-Type": "application/json"},
        )
        small = client.post(
            "/api/mode",
            content=(c for c in (b'{"mode": ', b'"production"}')),
            headers={"Content-Type": "application/json"},
        )
    assert declared.status_code == 413 and "50,000,012 bytes" in declared.json()["detail"]
    assert "16,384-byte limit" in declared.json()["detail"]
    assert chunked.status_code == 413 and "unknown size" in chunked.json()["detail"]
    assert small.status_code == 200 and small.json()["after"] == "production"
    assert before != lite.config.read_bytes()  # only the small, valid body changed the file


def test_clean_while_running_is_a_409_that_says_to_pause_first(lite):
    with lite.client() as client:
        response = client.post("/api/clean")
        health = client.get("/api/health").json()
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "clean only runs while the fleet is paused: POST /api/pause (or run `emugen pause`) first"
    )
    assert health["streams"]["companies"]["batches"] == 3  # nothing was removed


def test_clean_while_paused_wipes_the_store_and_purges_the_queues(lite):
    lite.redis.rpush("generate", b"a", b"b")
    lite.redis.rpush("pipeline", b"c")
    with lite.client() as client:
        client.post("/api/pause")
        response = client.post("/api/clean")
        health = client.get("/api/health").json()
    assert response.status_code == 200
    body = response.json()
    assert body["removed"]["batches"] == 6 and body["removed"]["bronze_records"] > 0
    assert body["queued_messages_purged"] == 3 and lite.redis.llen("generate") == 0
    assert body["message"].startswith("removed ") and body["message"].endswith(
        ", 3 queued messages"
    )
    assert health["streams"]["companies"]["batches"] == 0 and health["paused"] is True


# -- security defaults -----------------------------------------------------------------------


def test_off_loopback_control_needs_the_bearer_token_but_reading_does_not(lite):
    app = lite.app(host="0.0.0.0", environ={"EMUGEN_WEB_TOKEN": TOKEN})
    with TestClient(app, base_url="http://dashboard.example:8000") as client:
        missing = client.post("/api/pause")
        wrong = client.post("/api/pause", headers={"Authorization": "Bearer nope"})
        basic = client.post(
            "/api/mode", json={"mode": "production"}, headers={"Authorization": f"Basic {TOKEN}"}
        )
        right = client.post("/api/pause", headers={"Authorization": f"Bearer {TOKEN}"})
        reading = client.get("/api/health")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer <token>" in missing.json()["detail"]
    assert "EMUGEN_WEB_TOKEN" in missing.json()["detail"]
    assert wrong.status_code == 401 and "does not match" in wrong.json()["detail"]
    assert basic.status_code == 401 and yaml.safe_load(lite.config.read_text())["mode"] == (
        "emulated"
    )
    assert right.status_code == 200 and right.json()["paused"] is True
    assert reading.status_code == 200 and reading.json()["status"] == "paused"


@pytest.mark.parametrize("environ", [{}, {"EMUGEN_WEB_TOKEN": ""}, {"EMUGEN_WEB_TOKEN": "short"}])
def test_no_app_listens_beyond_loopback_without_a_real_token(lite, environ):
    with pytest.raises(InsecureBinding, match="refusing to listen on 0.0.0.0"):
        lite.app(host="0.0.0.0", environ=environ)


def test_emugen_web_refuses_a_public_address_without_the_token(lite, monkeypatch):
    monkeypatch.delenv("EMUGEN_WEB_TOKEN", raising=False)
    result = CliRunner().invoke(main, ["web", "--host", "0.0.0.0", "--config", str(lite.config)])
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0: EMUGEN_WEB_TOKEN is not set" in result.output


def test_another_sites_page_cannot_control_the_fleet_and_there_is_no_cors(lite):
    evil = {"Origin": "http://evil.example"}
    with lite.client() as client:
        forged = client.post("/api/pause", headers=evil)
        garbled = client.post("/api/pause", headers={"Origin": "http://["})  # found by the fuzz
        own = client.post("/api/pause", headers={"Origin": BASE})
        read = client.get("/api/health", headers=evil)
        preflight = client.options(
            "/api/mode", headers={**evil, "Access-Control-Request-Method": "POST"}
        )
    assert forged.status_code == 403 and "cross-origin" in forged.json()["detail"]
    assert garbled.status_code == 403
    assert own.status_code == 200
    for response in (read, preflight):
        assert "access-control-allow-origin" not in response.headers
    assert preflight.status_code == 405


def test_on_loopback_a_foreign_host_header_is_refused(lite):
    with lite.client() as client:
        rebound = client.get("/api/health", headers={"Host": "evil.example:8000"})
        local = client.get("/api/health", headers={"Host": "localhost:8000"})
        ipv6 = client.get("/api/health", headers={"Host": "[::1]:8000"})
    assert rebound.status_code == 400 and "is not allowed" in rebound.json()["detail"]
    assert local.status_code == 200 and ipv6.status_code == 200
    with lite.client(allowed_hosts=["dashboard.internal"]) as client:
        assert client.get("/api/health", headers={"Host": "dashboard.internal"}).status_code == 200


# -- metrics, OpenAPI, the page --------------------------------------------------------------


def _sample(text: str, name: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return float(line.rsplit(" ", 1)[1])


def test_metrics_export_batches_records_defects_latency_histograms_and_skips(store):
    with write_session(store.engine) as session:
        record_skip(session, "events", datetime.now(UTC), "paused", "the fleet is paused")
    with store.client() as client:
        first = client.get("/metrics")
        store.add(1)
        second = client.get("/metrics").text
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/plain")
    text = first.text
    assert _sample(text, 'emugen_batches{status="gold",stream="companies"}') == 3
    assert _sample(text, 'emugen_records_total{stream="companies"}') == 15
    assert 'emugen_defects_injected_total{defect="' in text
    assert 'emugen_defects_total{defect="' in text and 'outcome="missed"} 0.0' in text
    assert 'outcome="injected"' not in text and 'outcome="pending"' not in text
    assert _sample(text, 'emugen_skipped_ticks_total{reason="paused"}') == 1
    assert _sample(text, 'emugen_queue_depth{queue="pipeline"}') == 0
    assert _sample(text, "emugen_workers_alive") == 1
    assert 'emugen_layer_latency_seconds_bucket{layer="end_to_end",le="0.1"}' in text
    # each batch is observed once: a second scrape adds only the new one
    count = 'emugen_layer_latency_seconds_count{layer="end_to_end"}'
    assert _sample(text, count) == 6 and _sample(second, count) == 7
    assert _sample(second, 'emugen_stage_work_seconds_count{stage="gold"}') == 7


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_summing_the_defect_outcomes_counts_each_injected_defect_once(store):
    with store.client() as client:
        text = client.get("/metrics").text
    injected = sum(_samples(text, "emugen_defects_injected_total").values())
    settled = sum(_samples(text, "emugen_defects_total").values())
    pending = sum(_samples(text, "emugen_defects_pending").values())
    assert injected > 0 and settled + pending == injected
    assert {dict(k)["outcome"] for k in _samples(text, "emugen_defects_total")} == {
        "caught",
        "missed",
        "wrong_reason",
    }


def test_metrics_show_the_mode_and_when_each_stream_last_reached_gold(store):
    with write_session(store.engine) as session:
        newest = {
            stream: session.scalar(
                select(func.max(BatchRow.gold_at)).where(BatchRow.stream == stream)
            )
            for stream in ("companies", "events")
        }
    with store.client() as client:
        before = client.get("/metrics").text
        assert client.post("/api/mode", json={"mode": "production"}).status_code == 200
        after = client.get("/metrics").text
    assert _samples(before, "emugen_mode") == {
        (("mode", "emulated"),): 1.0,
        (("mode", "production"),): 0.0,
    }
    assert _samples(after, "emugen_mode") == {
        (("mode", "emulated"),): 0.0,
        (("mode", "production"),): 1.0,
    }
    assert _samples(before, "emugen_last_gold_timestamp_seconds") == {
        (("stream", stream),): at.timestamp() for stream, at in newest.items()
    }


def test_the_openapi_schema_lists_every_endpoint_and_the_mode_body(lite):
    with lite.client() as client:
        schema = client.get("/openapi.json").json()
        docs = client.get("/docs")
    assert {
        "/api/health",
        "/api/batches",
        "/api/quality",
        "/api/latency",
        "/api/pause",
        "/api/resume",
        "/api/mode",
        "/api/clean",
        "/api/stream",
        "/api/snapshot",
        "/metrics",
    } <= set(schema["paths"])
    assert schema["components"]["schemas"]["Mode"]["enum"] == ["production", "emulated"]
    assert docs.status_code == 200


def test_the_openapi_schema_documents_every_error_and_the_token_only_where_required(lite):
    with lite.client() as client:
        loopback = client.get("/openapi.json").json()
    with lite.client(host="0.0.0.0", environ={"EMUGEN_WEB_TOKEN": TOKEN}) as client:
        public = client.get("/openapi.json").json()
    for schema, token in ((loopback, False), (public, True)):
        for path in ("/api/pause", "/api/resume", "/api/mode", "/api/clean"):
            op = schema["paths"][path]["post"]
            assert {"400", "403", "413"} <= set(op["responses"]), path
            assert ("401" in op["responses"]) is token, path
            assert (op.get("security") == [{"HTTPBearer": []}]) is token, path
        for path in ("/api/mode", "/api/clean"):
            assert "409" in schema["paths"][path]["post"]["responses"]
        assert "400" in schema["paths"]["/api/health"]["get"]["responses"]
        assert "security" not in schema["paths"]["/api/health"]["get"]
    assert "HTTPBearer" in public["components"]["securitySchemes"]
    assert "securitySchemes" not in loopback.get("components", {})


def test_the_page_is_rendered_with_counters_mode_quality_and_labels(store):
    with store.client() as client:
        page = client.get("/")
        script = client.get("/static/dashboard.js")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    html = page.text
    assert '<output id="count-companies"' in html and ">3</output>" in html
    assert 'id="mode" class="badge mode-emulated"' in html and "Switch to production" in html
    assert 'data-defect-pct="' in html and 'id="caught-pct"' in html and "100 %" in html
    assert 'aria-labelledby="h-quality"' in html and 'href="http://127.0.0.1:5555"' in html
    assert script.status_code == 200 and "EventSource" in script.text


def test_the_snapshot_fallback_holds_everything_the_page_draws(lite):
    with lite.client() as client:
        s = client.get("/api/snapshot").json()
    assert s["id"] is None and s["status"] == "running" and len(s["recent"]) == 6
    assert {"latency", "quality", "streams", "queues", "config", "flower_url"} <= set(s)


# -- the event stream, against a real server ---------------------------------------------------


@contextmanager
def serve(app: Any) -> Iterator[str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class Events:
    """Reads one SSE connection in a thread; `next()` waits for the next snapshot, `alive`
    collects the heartbeats."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self.alive: queue.Queue[dict[str, Any]] = queue.Queue()
        self.client = httpx.Client(timeout=httpx.Timeout(5, read=None))
        self.response = self.client.send(
            self.client.build_request("GET", f"{url}/api/stream", headers=headers or {}),
            stream=True,
        )
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        event: dict[str, Any] = {}
        try:
            for line in self.response.iter_lines():
                if not line:
                    if "data" in event:
                        (self.alive if event.get("event") == "alive" else self.queue).put(event)
                    event = {}
                    continue
                key, _, value = line.partition(":")
                event[key] = value.strip()
        except Exception:  # noqa: BLE001 - closed from the test thread
            pass

    def next(self, timeout: float = 5) -> dict[str, Any]:
        event = self.queue.get(timeout=timeout)
        return {**event, "data": json.loads(event["data"])}

    def close(self) -> None:
        self.response.close()
        self.client.close()


def _gold(event: dict[str, Any]) -> int:
    return sum(s["gold"] for s in event["data"]["streams"].values())


def _quality_current(event: dict[str, Any]) -> bool:
    """The snapshot's quality report counts every record its stream counters do."""
    data = event["data"]
    return all(
        data["quality"]["streams"].get(name, {}).get("records", 0) == entry["records"]
        for name, entry in data["streams"].items()
    )


def test_a_quality_report_held_back_by_its_refresh_limit_is_pushed_once_the_limit_passes(
    lite, monkeypatch
):
    monkeypatch.setattr(web_state, "QUALITY_MIN_REFRESH_S", 1.5)
    with serve(lite.app(poll_interval=0.05)) as url:
        events = Events(url)
        try:
            first = events.next()
            lite.add(1)  # lands well within 1.5 s of the first report: its refresh waits
            latest = events.next()
            while _gold(latest) < 7:
                latest = events.next()
            started = time.monotonic()
            while not _quality_current(latest):  # the store is still now; the push must come
                latest = events.next(timeout=3)
            assert time.monotonic() - started < 2.5
            assert latest["data"]["quality"]["injected"] >= first["data"]["quality"]["injected"]
            with pytest.raises(queue.Empty):  # and once it is current, nothing more is sent
                events.next(timeout=0.5)
        finally:
            events.close()


def test_the_stream_sends_the_snapshot_at_once_then_one_per_change_with_ids(lite):
    with serve(lite.app(poll_interval=0.05)) as url:
        events = Events(url)
        try:
            assert events.response.headers["content-type"].startswith("text/event-stream")
            first = events.next()
            assert first["event"] == "snapshot" and first["id"] == first["data"]["id"]
            assert _gold(first) == 6
            lite.add(1)
            seen = [events.next()]
            while _gold(seen[-1]) < 7 or not _quality_current(seen[-1]):
                seen.append(events.next())
            ids = [first["id"]] + [e["id"] for e in seen]
            assert len(set(ids)) == len(ids)  # every snapshot has its own id
            with pytest.raises(queue.Empty):  # nothing changed: nothing sent
                events.next(timeout=0.5)
        finally:
            events.close()


def test_a_reconnect_with_the_last_event_id_resumes_without_a_repeat(lite):
    with serve(lite.app(poll_interval=0.05)) as url:
        first = Events(url)
        current = first.next()["id"]
        first.close()
        resumed = Events(url, {"Last-Event-ID": current})
        stale = Events(url, {"Last-Event-ID": "0-0"})
        try:
            assert stale.next()["id"] == current  # a stale id gets the current state at once
            with pytest.raises(queue.Empty):  # the current id: nothing to catch up on
                resumed.next(timeout=0.5)
            # ... but at once word that the stream works and the client's picture is current
            beat = resumed.alive.get(timeout=5)
            assert json.loads(beat["data"]) == {"id": current} and "id" not in beat
            lite.add(1)
            after = resumed.next()
            assert after["id"] != current and _gold(after) >= 6
        finally:
            resumed.close()
            stale.close()


def test_a_quiet_stream_sends_heartbeats_naming_the_snapshot_the_client_has(lite, monkeypatch):
    monkeypatch.setattr(web_stream, "HEARTBEAT_S", 1)
    with serve(lite.app(poll_interval=0.05)) as url:
        events = Events(url)
        try:
            current = events.next()["id"]
            beats = [events.alive.get(timeout=5) for _ in range(2)]
            assert [json.loads(b["data"]) for b in beats] == [{"id": current}] * 2
            with pytest.raises(queue.Empty):  # heartbeats are not snapshots
                events.next(timeout=0.2)
        finally:
            events.close()


# -- fuzz: every operation of the schema, valid and invalid input, never a 5xx ---------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),  # what json.dumps can send
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


def from_schema(schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy:
    """Values valid for a (small) JSON Schema: what FastAPI generates for this API."""
    if "$ref" in schema:
        return from_schema(components[schema["$ref"].rsplit("/", 1)[1]], components)
    if "anyOf" in schema:
        return st.one_of([from_schema(s, components) for s in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "object":
        props = {k: from_schema(v, components) for k, v in schema.get("properties", {}).items()}
        return st.fixed_dictionaries(props)
    if kind == "null":
        return st.none()
    return st.text(max_size=20)


def _params(op: dict[str, Any], components: dict[str, Any], where: str) -> st.SearchStrategy:
    fields = {}
    for p in op.get("parameters", []):
        if p["in"] == where:
            value = st.one_of(
                from_schema(p["schema"], components), HEADER_TEXT, st.integers(-(10**12), 10**12)
            )
            fields[p["name"]] = value.map(str)
    extra = st.dictionaries(st.sampled_from(["x", "limit", "page"]), HEADER_TEXT, max_size=2)
    return st.tuples(st.fixed_dictionaries({}, optional=fields), extra).map(
        lambda pair: {**pair[1], **pair[0]}
    )


@st.composite
def requests(draw: Any, schema: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    components = schema["components"]["schemas"]
    operations = [
        (method, path, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if path != "/api/stream"
    ]  # endless by design
    operations += [("get", "/", {}), ("get", "/static/dashboard.js", {})]
    method, path, op = draw(st.sampled_from(operations))
    kwargs: dict[str, Any] = {"params": draw(_params(op, components, "query"))}
    headers = draw(
        st.dictionaries(
            st.sampled_from(["Authorization", "Origin", "Last-Event-ID", "Accept", "Content-Type"]),
            HEADER_TEXT,
            max_size=2,
        )
    )
    if method == "post":
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
        valid = from_schema(body["schema"], components) if body else JSON
        choice = draw(st.sampled_from(["valid", "json", "bytes", "none"]))
        if choice == "valid":
            kwargs["json"] = draw(valid)
        elif choice == "json":
            kwargs["json"] = draw(JSON)
        elif choice == "bytes":
            kwargs["content"] = draw(st.binary(max_size=40))
    if "json" in kwargs:
        headers.pop("Content-Type", None)
    kwargs["headers"] = headers
    return method, path, kwargs


def test_fuzzing_every_operation_in_the_openapi_schema_never_gets_a_5xx(lite):
    with lite.client() as client:
        schema = client.get("/openapi.json").json()
        statuses: dict[int, int] = {}

        @settings(
            max_examples=250,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(requests(schema))
        def fuzz(request: tuple[str, str, dict[str, Any]]) -> None:
            method, path, kwargs = request
            response = client.request(method.upper(), path, **kwargs)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, (method, path, kwargs, response.text[:500])

        fuzz()
    assert {200, 422} <= set(statuses)  # both paths were exercised
