"""The dashboard's history charts and polish in a real Chromium, watching a real fleet
(redis-server, celery worker and beat at a 1 s cadence, `emugen web`)."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from sqlalchemy import select

from emugen.db.models import BatchRow
from emugen.db.session import read_session
from emugen.fleet.broker import free_port
from tests.integration.conftest import wait_for
from tests.integration.test_dashboard_a11y import axe_violations, blocking
from tests.integration.test_dashboard_browser import _answers, browser  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.slow]

HISTORY_AFTER_S = 30
# Set to copy the history section's screenshot somewhere (e.g. docs/assets/history.png).
SCREENSHOT_ENV = "EMUGEN_HISTORY_PNG"
SERIES_POINTS = """[...document.querySelectorAll('#history path.line')]
  .map(p => [p.closest('figure').id + '/' + p.dataset.series, Number(p.dataset.points)])"""


def test_the_history_charts_fill_live_and_the_page_is_honest_about_batches_and_quality(
    fleet,
    browser,  # noqa: F811 - the browser fixture
    tmp_path,
):
    fleet.write(interval=1)
    fleet.start()
    port = free_port()
    flower = "http://127.0.0.1:5555"
    fleet.spawn(
        "web",
        "-m",
        "emugen",
        "web",
        "--port",
        str(port),
        "--config",
        str(fleet.config),
        "--flower-url",
        flower,
    )
    url = f"http://127.0.0.1:{port}/"
    wait_for(lambda: _answers(f"{url}api/health"), 20, "emugen web to answer")
    wait_for(lambda: any(b.status == "gold" for b in fleet.batches()), 30, "a first gold batch")
    first_gold = time.monotonic()

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: dialog.accept())  # Clean… asks to confirm
    page.goto(url)
    page.wait_for_function("document.getElementById('live').textContent === 'live'", timeout=10_000)

    # 30 s of a fleet at 1 s: every series of every chart has at least 3 points, pushed
    page.wait_for_timeout(max(0.0, HISTORY_AFTER_S - (time.monotonic() - first_gold)) * 1000)
    try:
        page.wait_for_function(f"{SERIES_POINTS}.every(([, n]) => n >= 3)", timeout=5_000)
    finally:
        points = dict(page.evaluate(SERIES_POINTS))
    assert len(points) == 8, points  # 4 charts x 2 series
    assert min(points.values()) >= 3, f"{points}\n{fleet.logs()}"
    for name in (
        "Batches per minute per stream",
        "Tick to gold latency",
        "Defect rate: injected vs caught",
        "Pipeline queue depth and skipped ticks",
    ):
        chart = page.get_by_role("img", name=name)
        chart.wait_for()
        assert "latest:" in (chart.locator("desc").text_content() or "")
    assert "latest: companies" in (page.text_content("#chart-throughput-summary") or "")
    # drawn charts, links and the recent table open: still nothing serious for axe-core
    page.click("#h-timeline ~ details > summary")
    found = axe_violations(page)
    assert blocking(found) == [], json.dumps(found, indent=1)
    shot = tmp_path / "history.png"
    page.locator("#history").screenshot(path=str(shot))
    if os.environ.get(SCREENSHOT_ENV):
        shutil.copyfile(shot, os.environ[SCREENSHOT_ENV])
    # another window is fetched and drawn with its own buckets
    page.get_by_role("button", name="last hour").click()
    page.wait_for_function(
        "document.getElementById('chart-latency-title').textContent.includes('last 1h')",
        timeout=10_000,
    )

    # the quality table fits at 1,280 px: no sideways scrolling, caught and escaped in view
    page.wait_for_function(
        "document.querySelectorAll('#defect-rows tr').length >= 5", timeout=10_000
    )
    assert page.evaluate(
        "(() => { const t = document.getElementById('defect-table');"
        " return t.scrollWidth <= t.parentElement.clientWidth; })()"
    )
    for header in ("caught", "escaped"):
        box = page.locator("#defect-table thead th", has_text=header).bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1280
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # recent batches: local wall-clock time (UTC ISO in the title), a link to the batch page
    # and to the generate task in Flower
    link = page.locator("#recent-rows tr th a").first
    batch_id = link.text_content()
    assert link.get_attribute("href") == f"/batches/{batch_id}"
    stamp = page.locator("#recent-rows tr time").first
    assert (stamp.get_attribute("title") or "").startswith(time.strftime("%Y-", time.gmtime()))
    with read_session(fleet.engine()) as session:
        task_id = session.scalar(select(BatchRow.task_id).where(BatchRow.batch_id == batch_id))
    assert task_id, "the worker stored no task id"
    flower_link = page.locator("#recent-rows tr").first.get_by_role("link", name="Flower")
    assert flower_link.get_attribute("href") == f"{flower}/task/{task_id}"

    # after clean, nothing was injected: no green 100 %
    page.get_by_role("button", name="Pause").click()
    page.wait_for_function("document.getElementById('clean').disabled === false", timeout=10_000)
    page.get_by_role("button", name="Clean…").click()
    page.wait_for_function(
        "document.getElementById('caught-pct').textContent === 'nothing injected yet'",
        timeout=10_000,
    )
    assert "good" not in (page.get_attribute("#caught-pct", "class") or "")
    assert page.is_hidden("#caught-label")
    assert errors == []
