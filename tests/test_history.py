"""The history charts: time buckets, rates and percentiles computed in SQL on both databases."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from emugen.db.models import BatchRow, SkippedTick
from emugen.db.session import init_db, make_engine, read_session, write_session
from emugen.pipeline.reconcile import reconcile
from emugen.pipeline.runner import run_pipeline
from emugen.status.stats import percentile
from emugen.web import history as h
from emugen.web.history import BUCKETS, WINDOWS, HistoryCache, history, history_key
from tests.conftest import make_settings
from tests.test_web_api import Store

NOW = datetime(2026, 3, 1, 12, 0, 3, tzinfo=UTC)  # 3 s into a 7.5 s bucket of the 15m window
BUCKET_MS = 7_500
# (stream, seq) -> seconds before NOW it was generated, tick -> gold (ms), queue depth
PLACED = {
    ("companies", 1): (20, 400, 1),
    ("companies", 2): (11, 300, 4),
    ("companies", 3): (10, 200, 2),
    ("companies", 4): (2, 100, 3),
    ("events", 1): (1000, 450, 9),  # before the window: counted nowhere
    ("events", 2): (12, 350, 5),
    ("events", 3): (9, 250, 7),
    ("events", 4): (2.5, None, 6),  # still in bronze: no latency, no defects yet
}
SKIPS = [4, 4, 40]  # seconds before NOW


def _engine(database_url: str) -> Engine:
    engine = make_engine(database_url)
    init_db(engine)
    return engine


@pytest.fixture
def placed(database_url: str) -> Engine:
    """Eight real batches (many defects) moved to known times, and three skipped ticks."""
    engine = _engine(database_url)
    settings = make_settings(
        companies={"quality": {"rate": 0.5}}, events={"quality": {"rate": 0.5}}
    )
    run_pipeline(engine, settings, 4)
    with write_session(engine) as session:
        for (stream, seq), (ago, latency_ms, depth) in PLACED.items():
            row = session.scalars(
                select(BatchRow).where(BatchRow.stream == stream, BatchRow.seq == seq)
            ).one()
            row.generated_at = NOW - timedelta(seconds=ago)
            row.scheduled_at = row.generated_at - timedelta(milliseconds=50)
            row.queue_depth = depth
            if latency_ms is None:
                row.status, row.silver_at, row.gold_at = "bronze", None, None
            else:
                row.gold_at = row.scheduled_at + timedelta(milliseconds=latency_ms)
        for ago in SKIPS:
            at = NOW - timedelta(seconds=ago)
            session.add(
                SkippedTick(
                    at=at, stream="events", scheduled_at=at, reason="queue_depth", detail="test"
                )
            )
    yield engine
    engine.dispose()


def _bucket(moment: datetime) -> int:
    return int(moment.timestamp() * 1000) // BUCKET_MS


def _expected(engine: Engine) -> dict[str, Any]:
    """What each chart must show, worked out row by row in Python."""
    first = _bucket(NOW) - BUCKETS + 1
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    latencies: dict[int, list[float]] = defaultdict(list)
    records: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    depth: dict[int, int] = {}
    with read_session(engine) as session:
        for row in session.scalars(select(BatchRow)):
            b = _bucket(row.generated_at)
            if b < first:
                continue
            counts[b][row.stream] += 1
            depth[b] = max(depth.get(b, 0), row.queue_depth)
            if row.gold_at is not None:
                latencies[b].append((row.gold_at - row.scheduled_at).total_seconds() * 1000)
            if row.status in ("silver", "gold"):
                tally = records[b]
                tally[0] += row.record_count
                tally[1] += row.injected_count
                tally[2] += reconcile(session, row.batch_id).caught
    return {"counts": counts, "latencies": latencies, "records": records, "depth": depth}


def test_each_chart_buckets_the_window_as_the_rows_say(placed):
    with read_session(placed) as session:
        found = history(session, "15m", now=NOW)
    want = _expected(placed)
    charts = found["charts"]
    assert found["bucket_s"] == 7.5 and found["buckets"] == BUCKETS

    # throughput: batches per minute per stream; the bucket still filling is a rate over the
    # 3 s it has lasted
    expected = {}
    for b, per_stream in want["counts"].items():
        elapsed = min(BUCKET_MS, int(NOW.timestamp() * 1000) - b * BUCKET_MS)
        expected[b * BUCKET_MS] = {
            s: per_stream.get(s, 0) * 60_000 / elapsed for s in ("companies", "events")
        }
    series = charts["throughput"]["series"]
    assert {s: dict(map(tuple, points)) for s, points in series.items()} == {
        s: {at: pytest.approx(v[s], abs=0.01) for at, v in expected.items()}
        for s in ("companies", "events")
    }
    assert dict(map(tuple, series["companies"]))[_bucket(NOW) * BUCKET_MS] == 20.0  # 1 in 3 s
    assert len(series["events"]) == 4  # the batch 1000 s ago is outside the window

    # tick -> gold: nearest-rank p50/p95 per bucket, as emugen.status.stats defines them
    lat = charts["latency"]["series"]
    assert [at for at, _ in lat["p50"]] == sorted(b * BUCKET_MS for b in want["latencies"])
    for (at, p50), (_, p95) in zip(lat["p50"], lat["p95"], strict=True):
        values = want["latencies"][at // BUCKET_MS]
        assert p50 == pytest.approx(percentile(values, 50), abs=0.5)
        assert p95 == pytest.approx(percentile(values, 95), abs=0.5)
    assert any(len(v) == 2 for v in want["latencies"].values())  # a real percentile somewhere

    # defects: injected and caught (by the truth) as a share of the records, per bucket
    defects = charts["defects"]["series"]
    assert len(defects["injected"]) == len(want["records"]) >= 3
    for (at, injected), (_, caught) in zip(defects["injected"], defects["caught"], strict=True):
        records, n_injected, n_caught = want["records"][at // BUCKET_MS]
        assert injected == pytest.approx(100 * n_injected / records, abs=0.01)
        assert caught == pytest.approx(100 * n_caught / records, abs=0.01)
    assert sum(v for _, v in defects["caught"]) > 0

    # backlog: deepest queue per bucket with batches; skipped ticks per bucket (0 if none)
    backlog = charts["backlog"]["series"]
    assert dict(map(tuple, backlog["queue depth"])) == {
        b * BUCKET_MS: d for b, d in want["depth"].items()
    }
    skipped = dict(map(tuple, backlog["skipped ticks"]))
    assert skipped[_bucket(NOW - timedelta(seconds=4)) * BUCKET_MS] == 2
    assert skipped[_bucket(NOW - timedelta(seconds=40)) * BUCKET_MS] == 1
    assert sum(skipped.values()) == 3
    assert set(skipped) == {b * BUCKET_MS for b in want["depth"]} | {
        _bucket(NOW - timedelta(seconds=s)) * BUCKET_MS for s in SKIPS
    }


@pytest.mark.parametrize("window", list(WINDOWS))
def test_a_chart_never_has_more_than_120_points_whatever_the_window(database_url, window):
    engine = _engine(database_url)
    run_pipeline(engine, make_settings(), 1, size=5)
    span = WINDOWS[window]
    with write_session(engine) as session:
        template = {
            c.name: getattr(session.get(BatchRow, "events-000000001"), c.key)
            for c in BatchRow.__table__.c
        }
        # one batch every span/200 s over 1.5 windows: more than one per bucket, and some
        # older than the window
        rows = []
        for k in range(300):
            at = NOW - timedelta(seconds=k * span / 200)
            rows.append(
                {
                    **template,
                    "batch_id": f"events-{k + 2:09d}",
                    "seq": k + 2,
                    "scheduled_at": at - timedelta(seconds=1),
                    "generated_at": at,
                    "gold_at": at + timedelta(seconds=1),
                    "queue_depth": k % 7,
                }
            )
        session.execute(insert(BatchRow), rows)
    with read_session(engine) as session:
        found = history(session, window, now=NOW)
    since = datetime.fromisoformat(found["from"])
    bucket_ms = span * 1000 // BUCKETS
    inside = sum(1 for r in rows if r["generated_at"] >= since)
    for chart in found["charts"].values():
        for points in chart["series"].values():
            assert len(points) <= BUCKETS
            assert all(
                since.timestamp() * 1000 <= at <= NOW.timestamp() * 1000 and at % bucket_ms == 0
                for at, _ in points
            )
    events = found["charts"]["throughput"]["series"]["events"]
    assert len(events) >= BUCKETS - 1  # every bucket holds a batch (the newest may be too short)
    # back from a rate (rounded to 0.01 per minute) to the batches in each bucket
    counted = sum(
        round(rate * min(bucket_ms, NOW.timestamp() * 1000 - at) / 60_000) for at, rate in events
    )
    newest_skipped = len(events) < BUCKETS  # the bucket that just began is not a rate yet
    assert counted <= inside and (newest_skipped or counted == inside)
    assert len(found["charts"]["latency"]["series"]["p95"]) == BUCKETS
    engine.dispose()


def test_an_empty_store_has_every_chart_and_no_point(database_url):
    engine = _engine(database_url)
    with read_session(engine) as session:
        found = history(session, "1h")
    assert set(found["charts"]) == {"throughput", "latency", "defects", "backlog"}
    assert {
        name: {s: p for s, p in c["series"].items()} for name, c in found["charts"].items()
    } == {
        "throughput": {"companies": [], "events": []},
        "latency": {"p50": [], "p95": []},
        "defects": {"injected": [], "caught": []},
        "backlog": {"queue depth": [], "skipped ticks": []},
    }
    engine.dispose()


def test_the_cache_rebuilds_a_changed_history_at_most_every_refresh_interval(tmp_path, monkeypatch):
    engine = _engine(f"sqlite:///{tmp_path / 'emugen.db'}")
    monkeypatch.setattr(h, "MIN_REFRESH_S", 3600.0)  # "a moment ago", however slow the machine
    cache = HistoryCache()
    with read_session(engine) as session:
        first = cache.get(session, "15m", history_key(session))
        assert cache.get(session, "15m", history_key(session))["stamp"] == first["stamp"]
    run_pipeline(engine, make_settings(), 1)
    with read_session(engine) as session:
        key = history_key(session)
        # changed, but built less than MIN_REFRESH_S ago: held back, and the poller's key says so
        assert not cache.may_refresh("15m", key)
        assert cache.shown_key("15m", key) != key
        monkeypatch.setattr(h, "MIN_REFRESH_S", 0.0)
        monkeypatch.setattr(h, "COST_FACTOR", 0)
        assert cache.shown_key("15m", key) == key
        again = cache.get(session, "15m", key)
    assert again["stamp"] != first["stamp"]
    assert again["charts"]["latency"]["series"]["p95"]
    engine.dispose()


def test_the_api_serves_each_window_and_refuses_another_with_a_clear_422(tmp_path):
    store = Store(tmp_path, f"sqlite:///{tmp_path / 'emugen.db'}", rounds=2)
    with store.client() as client:
        for window in WINDOWS:
            got = client.get("/api/history", params={"window": window})
            assert got.status_code == 200 and got.json()["window"] == window
            assert got.json()["charts"]["latency"]["series"]["p95"]
        bad = client.get("/api/history", params={"window": "2h"})
        assert bad.status_code == 422
        assert "window" in bad.json()["message"] and "'15m'" in bad.json()["message"]
        assert "2h" in bad.json()["message"]


def test_the_pushed_snapshot_carries_the_history_only_when_it_was_rebuilt(tmp_path, monkeypatch):
    store = Store(tmp_path, f"sqlite:///{tmp_path / 'emugen.db'}", rounds=1)
    state = store.app().state.web
    first = state.pushed_snapshot()
    assert first["history"]["stamp"] == first["history_stamp"]
    second = state.pushed_snapshot()  # nothing changed: the stamp alone
    assert "history" not in second and second["history_stamp"] == first["history_stamp"]
    assert state.snapshot()["history"]["stamp"] == first["history_stamp"]  # the API: always
    monkeypatch.setattr(h, "MIN_REFRESH_S", 0.0)
    monkeypatch.setattr(h, "COST_FACTOR", 0)
    store.add(1)
    third = state.pushed_snapshot()
    assert third["history_stamp"] != first["history_stamp"] and "history" in third


def test_retention_takes_a_pruned_batchs_queue_depth_sample_with_it(placed):
    from emugen.pipeline.retention import prune

    with read_session(placed) as session:
        before = history(session, "15m", now=NOW)["charts"]["backlog"]["series"]["queue depth"]
    pruned = prune(placed, timedelta(0), now=NOW + timedelta(minutes=1))
    assert pruned.batches >= 4
    with read_session(placed) as session:
        kept = {
            b: d for b, d in session.execute(select(BatchRow.generated_at, BatchRow.queue_depth))
        }
        after = history(session, "15m", now=NOW)["charts"]["backlog"]["series"]["queue depth"]
    # kept: the newest batch of each stream, both in the bucket that is filling (2 and 2.5 s
    # ago, depths 3 and 6): one sample left of the four buckets that had one before
    assert sorted(kept.values()) == [3, 6] and len(before) == 4
    assert after == [[_bucket(NOW) * BUCKET_MS, 6]]


def test_the_page_links_each_batch_and_its_flower_task_only_when_flower_is_configured(tmp_path):
    store = Store(tmp_path, f"sqlite:///{tmp_path / 'emugen.db'}", rounds=1)
    with write_session(store.engine) as session:
        session.get(BatchRow, "events-000000001").task_id = "5f0c-task"
    with store.client(flower_url="http://flower.example:5555") as client:
        page = client.get("/").text
    assert '<a href="/batches/events-000000001">events-000000001</a>' in page
    assert 'href="http://flower.example:5555/task/5f0c-task"' in page
    assert page.count("/task/") == 1  # the other batch has no task id (landed in-process)
    with store.client(flower_url=None) as client:
        page = client.get("/").text
    assert '<a href="/batches/events-000000001">' in page
    assert "/task/" not in page and 'class="flower-col" hidden' in page


def test_an_empty_store_says_nothing_injected_yet_instead_of_100_percent(tmp_path):
    store = Store(tmp_path, f"sqlite:///{tmp_path / 'emugen.db'}", rounds=0)
    with store.client() as client:
        page = client.get("/").text
    assert ">nothing injected yet</output>" in page and ">100 %<" not in page
    assert '<span id="caught-label" hidden>' in page
