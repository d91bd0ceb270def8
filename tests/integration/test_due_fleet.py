"""What is due, on a real fleet: after `emugen mode production` the web snapshot, `emugen status`
and the page show both streams' next ticks within 2 s, equal to the ones beat then keeps."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta

import httpx
import pytest

from emugen.fleet.broker import free_port
from tests.integration.conftest import Fleet, wait_for
from tests.integration.test_dashboard_browser import browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.slow]

PRODUCTION = {"companies": 3600.0, "events": 900.0}  # tests/fleet_helpers.py: PT1H, PT15M
SWITCH_S = 2.0  # the acceptance bound: the plan follows a mode switch within this
SENT = re.compile(r"Sending due task generate-(\w+) \(emugen\.generate_batch\) for (\S+)")


def _last_sends(fleet: Fleet) -> dict[str, datetime]:
    """Beat's own record: when it last sent each stream's tick (its log line per send)."""
    beat = next(p for p in fleet.procs if p.name == "beat")
    return {stream: datetime.fromisoformat(at) for stream, at in SENT.findall(beat.text())}


def _snapshot(url: str) -> dict:
    return httpx.get(f"{url}/api/snapshot", timeout=5).json()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _running(fleet: Fleet) -> str:
    """Worker, beat (2 s ticks) and `emugen web`, each stream sent at least once."""
    fleet.write(interval=2)
    fleet.start()
    port = free_port()
    fleet.spawn("web", "-m", "emugen", "web", "--port", str(port), "--config", str(fleet.config))
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(url), 20, "emugen web to answer")
    wait_for(lambda: set(_last_sends(fleet)) == set(PRODUCTION), 20, "a tick of each stream")
    return url


def _production_plan(url: str) -> dict | None:
    due = _snapshot(url)["due"]
    intervals = {s: d["interval_s"] for s, d in due["streams"].items()}
    return due if due["mode"] == "production" and intervals == PRODUCTION else None


def _switch(fleet: Fleet) -> float:
    """`emugen mode production`; returns when the file changed (wall clock)."""
    assert "mode emulated -> production" in fleet.emugen("mode", "production")
    return fleet.config.stat().st_mtime


def test_after_a_switch_to_production_the_snapshot_and_status_show_beats_next_ticks(fleet):
    url = _running(fleet)
    emulated = _snapshot(url)["due"]
    assert emulated["known"] and emulated["mode"] == "emulated"
    assert {d["interval_s"] for d in emulated["streams"].values()} == {2.0}

    switched = _switch(fleet)
    due = wait_for(lambda: _production_plan(url), 10, "the production plan in the snapshot")
    took = time.time() - switched
    print(f"the snapshot showed the production plan {took:.2f} s after the switch")
    assert took <= SWITCH_S, f"the plan followed the switch after {took:.2f} s\n{fleet.logs()}"

    # equal to beat's schedule: its last send of each stream plus the production interval
    sent = _last_sends(fleet)
    for stream, every in PRODUCTION.items():
        planned = datetime.fromisoformat(due["streams"][stream]["next_at"])
        expected = sent[stream] + timedelta(seconds=every)
        assert abs((planned - expected).total_seconds()) < 0.05, (stream, planned, expected)
        assert due["streams"][stream]["every"] == (
            "every 1 h (production)" if stream == "companies" else "every 15 min (production)"
        )

    report = json.loads(fleet.emugen("status", "--json"))
    assert {s: d["next_at"] for s, d in report["due"]["streams"].items()} == {
        s: d["next_at"] for s, d in due["streams"].items()
    }
    text = fleet.emugen("status")
    for stream, d in due["streams"].items():
        at = datetime.fromisoformat(d["next_at"])
        assert f"next {stream} batch {at:%H:%M:%S}, in " in text, text
    assert "every 1 h (production)" in text and "every 15 min (production)" in text

    # and beat keeps that plan: no tick of either stream goes out after the switch
    time.sleep(3)
    assert _last_sends(fleet) == sent


def test_the_page_shows_the_next_ticks_and_their_production_interval_within_2_s(fleet, browser):  # noqa: F811 - the fixture imported above
    url = _running(fleet)
    page = browser.new_page(timezone_id="UTC")
    errors: list[str] = []
    streams: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda r: streams.append(r.url) if "/api/stream" in r.url else None)
    page.goto(f"{url}/")
    page.get_by_role("heading", name="What is due").wait_for()
    page.wait_for_function(
        "document.getElementById('due-events-every').textContent === 'every 2 s (emulated)'",
        timeout=10_000,
    )

    switched = _switch(fleet)
    page.wait_for_function(
        "document.getElementById('due-companies-every').textContent === "
        "'every 1 h (production)' && document.getElementById('due-events-every')"
        ".textContent === 'every 15 min (production)'",
        timeout=10_000,
    )
    took = time.time() - switched
    print(f"the panel showed the production plan {took:.2f} s after the switch")
    assert took <= SWITCH_S, f"the panel followed the switch after {took:.2f} s"

    sent, due = _last_sends(fleet), _production_plan(url)
    assert due is not None
    for stream, every in PRODUCTION.items():
        at = datetime.fromisoformat(due["streams"][stream]["next_at"])
        assert abs((at - sent[stream] - timedelta(seconds=every)).total_seconds()) < 0.05
        when = page.text_content(f"#due-{stream}-when") or ""
        # the clock of beat's next send, counting down in the browser
        assert when.startswith(f"next {stream} batch {at:%H:%M:%S}, in "), when
        assert re.search(r", in (1 h|5\d min|1[45] min)$", when), when
    assert len(streams) == 1, streams  # the panel reads the page's own stream: no second one
    assert errors == []
