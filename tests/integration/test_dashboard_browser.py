"""The dashboard in a real Chromium, watching a real fleet (redis-server, worker, beat, web)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from emugen.fleet.broker import free_port
from tests.integration.conftest import wait_for
from tests.test_web_api import Store, serve

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Set to copy the screenshot somewhere (e.g. docs/assets/dashboard.png); always saved in tmp_path.
SCREENSHOT_ENV = "EMUGEN_DASHBOARD_PNG"


def _skip_or_fail(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {why}")
    pytest.skip(f"{why}; CI runs this (scripts/test.sh installs Debian's chromium)")


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _skip_or_fail(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _gold_total(page: Any) -> int:
    return sum(int(page.text_content(f"#count-{s}") or 0) for s in ("companies", "events"))


def test_the_page_follows_a_running_fleet_live_and_switches_its_mode(fleet, browser, tmp_path):
    fleet.write(interval=2)
    fleet.start()
    port = free_port()
    fleet.spawn("web", "-m", "emugen", "web", "--port", str(port), "--config", str(fleet.config))
    url = f"http://127.0.0.1:{port}/"
    wait_for(lambda: _answers(f"{url}api/health"), 20, "emugen web to answer")
    wait_for(lambda: any(b.status == "gold" for b in fleet.batches()), 30, "a first gold batch")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_function("document.getElementById('live').textContent === 'live'", timeout=10_000)
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    # the batch counter ticks at least three times within 10 s, pushed, without a reload
    increases, last = 0, _gold_total(page)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and increases < 3:
        page.wait_for_timeout(100)
        now = _gold_total(page)
        increases, last = increases + (now > last), now
    assert increases >= 3, f"the counter rose {increases} times in 10 s\n{fleet.logs()}"
    assert page.evaluate("window.__sameDocument") is True

    # the quality panel: non-zero defect shares, every defect caught, no escape alarm
    page.wait_for_function(
        "[...document.querySelectorAll('#defect-rows [data-defect-pct]')]"
        ".some(td => parseFloat(td.dataset.defectPct) > 0)",
        timeout=20_000,
    )
    assert (page.text_content("#caught-pct") or "").strip() == "100 %"
    assert page.is_hidden("#escaped-alarm")
    page.wait_for_function(
        "document.getElementById('workers').textContent.includes('alive')", timeout=15_000
    )  # the probe pinged the real worker

    # accessible names on the controls and charts
    page.get_by_role("button", name="Pause").wait_for()
    page.get_by_role("img", name=re.compile("most recent batches")).wait_for()
    page.get_by_role("img", name=re.compile("latency per layer")).wait_for()
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get(SCREENSHOT_ENV):
        shutil.copyfile(shot, os.environ[SCREENSHOT_ENV])

    # switching the mode from the page changes the badge and the file on disk (which beat
    # then applies), and back
    for target in ("production", "emulated"):
        page.get_by_role("button", name=f"Switch to {target}").click()
        page.wait_for_function(
            f"document.getElementById('mode').textContent === '{target}'", timeout=5_000
        )
        assert yaml.safe_load(fleet.config.read_text())["mode"] == target
        wait_for(
            lambda target=target: fleet.reloads()[-1].mode == target,
            10,
            f"beat to apply mode {target}",
        )

    # a narrow window: nothing wider than the screen
    page.set_viewport_size({"width": 380, "height": 800})
    page.wait_for_timeout(200)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert errors == []


def test_the_page_falls_back_to_polling_while_the_stream_is_unreachable(browser, tmp_path):
    store = Store(tmp_path, f"sqlite:///{tmp_path / 'emugen.db'}", rounds=1)
    with serve(store.app()) as url:
        page = browser.new_page()
        page.route("**/api/stream*", lambda route: route.abort())
        page.goto(f"{url}/")
        page.wait_for_function(
            "document.getElementById('live').textContent === 'polling'", timeout=5_000
        )
        before = int(page.text_content("#count-companies") or 0)
        store.add(1)
        page.wait_for_function(
            f"Number(document.getElementById('count-companies').textContent) > {before}",
            timeout=5_000,
        )
        page.unroute("**/api/stream*")  # the stream is back: the page returns to it
        page.wait_for_function(
            "document.getElementById('live').textContent === 'live'", timeout=10_000
        )


def test_an_open_stream_that_sends_no_snapshot_is_not_live_and_polling_takes_over(
    browser, tmp_path
):
    store = Store(tmp_path, f"sqlite:///{tmp_path / 'emugen.db'}", rounds=1)
    app = store.app()

    async def wedged(last_event_id: str | None, disconnected: Any) -> AsyncIterator[bytes]:
        yield b"retry: 1000\n\n"  # what every client got from the deadlocked broadcaster
        await asyncio.sleep(3600)

    app.state.web.broadcaster.events = wedged
    with serve(app) as url:
        page = browser.new_page()
        page.goto(f"{url}/")
        page.wait_for_function(
            "document.getElementById('live').textContent === 'polling'", timeout=20_000
        )
        before = int(page.text_content("#count-companies") or 0)
        store.add(1)
        page.wait_for_function(
            f"Number(document.getElementById('count-companies').textContent) > {before}",
            timeout=5_000,
        )
        assert page.text_content("#live") == "polling"
