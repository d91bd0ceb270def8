"""What is due: beat's plan from its entries, published on the broker, shown by every reader."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import fakeredis
import pytest
from celery import Celery
from celery.beat import Scheduler

from emugen.cli.up import summary_line
from emugen.fleet import announce, due
from emugen.fleet.entries import entries_for
from emugen.status.report import format_status
from tests.conftest import make_settings

T0 = datetime(2026, 12, 2, 13, 0, 0, tzinfo=UTC)


def _beat(mode: str) -> Scheduler:
    """Celery's own scheduler holding our entries, as EmugenScheduler keeps them."""
    app = Celery("due-test", broker="memory://", set_as_current=False)
    app.conf.enable_utc, app.conf.timezone = True, "UTC"
    beat = Scheduler(app, lazy=True)
    beat.merge_inplace(entries_for(make_settings(mode=mode)))
    return beat


def test_the_plan_is_each_streams_last_tick_plus_its_interval():
    beat = _beat("emulated")
    beat.schedule["generate-companies"].last_run_at = T0
    beat.schedule["generate-events"].last_run_at = T0 + timedelta(seconds=4)
    plan = due.plan(beat.schedule, "emulated")
    assert plan == {
        "mode": "emulated",
        "streams": {
            "companies": {
                "last_at": T0.isoformat(),
                "interval_s": 10.0,
                "next_at": (T0 + timedelta(seconds=10)).isoformat(),
            },
            "events": {
                "last_at": (T0 + timedelta(seconds=4)).isoformat(),
                "interval_s": 10.0,
                "next_at": (T0 + timedelta(seconds=14)).isoformat(),
            },
        },
    }


def test_after_a_switch_to_production_the_plan_is_the_hour_and_quarter_beat_will_wait():
    beat = _beat("emulated")
    now = datetime.now(UTC)
    for entry in beat.schedule.values():
        entry.last_run_at = now - timedelta(seconds=3)
    # a reload merges the new entries in place: each keeps its last run (fleet.schedule._apply)
    beat.merge_inplace(entries_for(make_settings(mode="production")))
    plan = due.plan(beat.schedule, "production")
    for stream, every in (("companies", 3600), ("events", 900)):
        planned = datetime.fromisoformat(plan["streams"][stream]["next_at"])
        assert planned == now - timedelta(seconds=3) + timedelta(seconds=every)
        # Celery's own answer for the same entry: not due, and due again that much later
        is_due, wait_s = beat.schedule[f"generate-{stream}"].is_due()
        assert not is_due and wait_s == pytest.approx((planned - now).total_seconds(), abs=1)


def test_a_naive_last_run_is_read_as_utc():
    beat = _beat("emulated")
    beat.schedule["generate-companies"].last_run_at = T0.replace(tzinfo=None)
    plan = due.plan(beat.schedule, "emulated")
    assert plan["streams"]["companies"]["next_at"] == "2026-12-02T13:00:10+00:00"


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (10, "10 s"),
        (0.5, "0.5 s"),
        (90, "1 min 30 s"),
        (900, "15 min"),
        (3600, "1 h"),
        (5400, "1 h 30 min"),
        (86400, "24 h"),
    ],
)
def test_intervals_are_said_as_people_say_them(seconds, said):
    assert due.span(seconds) == said


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (-3, "now"),
        (0.2, "now"),
        (42.4, "in 42 s"),
        (89, "in 89 s"),
        (2220, "in 37 min"),
        (3900, "in 1 h 5 min"),
        (7200, "in 2 h"),
    ],
)
def test_the_countdown_is_coarse_as_a_timetable(seconds, said):
    assert due.countdown(seconds) == said


def _published() -> dict:
    return {
        "mode": "production",
        "published_at": T0.isoformat(),
        "streams": {
            "companies": {
                "last_at": T0.isoformat(),
                "interval_s": 3600.0,
                "next_at": (T0 + timedelta(hours=1)).isoformat(),
            },
            "events": {
                "last_at": T0.isoformat(),
                "interval_s": 900.0,
                "next_at": (T0 + timedelta(minutes=15)).isoformat(),
            },
        },
    }


def test_the_view_names_the_next_batch_its_countdown_and_the_production_interval():
    shown = due.view(_published(), T0 + timedelta(minutes=23), paused=False)
    assert shown["known"] and shown["note"] is None
    companies = shown["streams"]["companies"]
    assert companies["line"] == "next companies batch 14:00:00, in 37 min · every 1 h (production)"
    assert companies["in_s"] == 37 * 60
    assert shown["streams"]["events"]["when"] == "next events batch 13:15:00, now"
    assert due.brief(shown) == ("next: companies 14:00:00 (in 37 min), events 13:15:00 (now)")


def test_a_paused_fleet_shows_paused_instead_of_a_countdown():
    shown = due.view(_published(), T0, paused=True)
    assert shown["streams"]["companies"]["line"] == (
        "companies batches paused · every 1 h (production)"
    )
    assert "emugen resume" in shown["note"]
    assert due.brief(shown) == "next: paused"


def test_without_a_plan_nothing_is_claimed_and_the_reason_is_given():
    shown = due.view(None, T0, paused=False)
    assert not shown["known"] and shown["streams"] == {}
    assert "beat is not running" in shown["note"]
    assert due.brief(shown) == "next: unknown (no beat plan)"
    down = due.view(None, T0, paused=False, error="the broker did not answer (refused)")
    assert down["note"].startswith("the broker did not answer (refused)")


def test_the_publisher_writes_on_change_refreshes_quietly_and_announces_only_changes(monkeypatch):
    redis = fakeredis.FakeRedis()
    heard = redis.pubsub()
    heard.subscribe(announce.CHANNEL)
    heard.get_message(timeout=1)  # the subscribe confirmation
    publisher = due.DuePublisher(redis, "redis://due-test/0")
    monkeypatch.setattr(announce, "_client", lambda url: redis)
    plan = {"mode": "emulated", "streams": {}}
    assert publisher.publish(plan) is True
    assert json.loads(redis.get(due.KEY))["mode"] == "emulated"
    assert 0 < redis.ttl(due.KEY) <= due.TTL_S
    assert heard.get_message(timeout=1)["data"] == b"due"
    redis.delete(due.KEY)
    assert publisher.publish(plan) is False  # unchanged, refreshed only every REFRESH_S
    assert redis.get(due.KEY) is None
    publisher._written -= due.REFRESH_S  # as if REFRESH_S had passed
    assert publisher.publish(plan) is False and redis.get(due.KEY) is not None
    assert heard.get_message(timeout=0.1) is None  # a refresh is no news
    publisher.withdraw()
    assert redis.get(due.KEY) is None and heard.get_message(timeout=1)["data"] == b"due"


def test_a_broker_that_refuses_the_plan_does_not_stop_beat_and_is_logged_once(caplog):
    # a Celery test worker run earlier may have left the root logger at ERROR
    caplog.set_level(logging.WARNING, logger=due.logger.name)

    class Down:
        def set(self, *args, **kwargs):
            raise ConnectionError("connection refused")

        get = set

    publisher = due.DuePublisher(Down(), "redis://127.0.0.1:1/0")
    for n in range(3):  # three ticks of an outage
        assert publisher.publish({"streams": {}, "n": n}) is False
    assert caplog.text.count("could not publish what is due") == 1
    plan, why = due.read_quietly(Down())
    assert plan is None and "connection refused" in why


def test_status_and_the_up_summary_line_show_what_is_due():
    shown = due.view(_published(), T0 + timedelta(minutes=23), paused=False)
    report = {
        "fleet": {"paused": False, "skipped_ticks": {}, "last_reload": None},
        "store": None,
        "due": shown,
        "batches": {},
        "layers": {"quarantine": 0},
        "quarantine_by_reason": {},
        "latest": [],
        "reconciliation": {
            "ok": True,
            "injected": 0,
            "caught": 0,
            "caught_pct": 100.0,
            "missed": 0,
            "false_alarms": {},
        },
        "landing": {"files": 0, "last_error": None},
    }
    text = format_status(report)
    assert "due (UTC):\n  next companies batch 14:00:00, in 37 min · every 1 h (production)" in text
    assert "next events batch 13:15:00, now · every 15 min (production)" in text
    line = summary_line(report, T0 + timedelta(minutes=23))
    assert line.endswith("next: companies 14:00:00 (in 37 min), events 13:15:00 (now)")
    assert summary_line(report, T0, paused=True).endswith("PAUSED (emugen resume)")
    report["due"] = due.view(None, T0, paused=False)
    assert "due: unknown (beat is not running" in format_status(report)
