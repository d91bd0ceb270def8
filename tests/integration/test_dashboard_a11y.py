"""The dashboard for keyboards and screen readers (axe-core in Chromium), and across a restart."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from emugen.fleet.broker import free_port
from tests.integration.test_dashboard_browser import _skip_or_fail, browser  # noqa: F401
from tests.integration.test_web_process import web_server
from tests.test_web_api import Store, serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
# scripts/test.sh installs the axe-core npm package here (npm install --prefix .venv/axe)
AXE_JS = Path(
    os.environ.get("EMUGEN_AXE_JS", REPO_ROOT / ".venv/axe/node_modules/axe-core/axe.min.js")
)
# what a pipeline developer's tools flag as blocking; "moderate"/"minor" are reported, not fatal
BLOCKING = {"serious", "critical"}


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Runs axe-core (WCAG 2.0/2.1 A and AA rules) on the page as it is now."""
    if not AXE_JS.exists():
        _skip_or_fail(f"axe-core is missing at {AXE_JS} (scripts/test.sh installs it with npm)")
    page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate(
        """async () => (await axe.run(document, {runOnly: {type: 'tag',
             values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations"""
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result
    ]


def blocking(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in violations if v["impact"] in BLOCKING]


def test_the_dashboard_has_no_serious_or_critical_accessibility_violations(browser, tmp_path):  # noqa: F811
    store = Store(tmp_path, f"sqlite:///{tmp_path / 'emugen.db'}", rounds=3)
    with serve(store.app()) as url:
        for scheme in ("light", "dark"):  # both palettes must keep their contrast
            page = browser.new_page(color_scheme=scheme)
            page.goto(f"{url}/")
            page.wait_for_function(
                "document.getElementById('live').textContent === 'live'", timeout=10_000
            )
            found = axe_violations(page)
            assert blocking(found) == [], json.dumps(found, indent=1)
            page.close()


def test_the_batch_page_has_no_serious_or_critical_accessibility_violations(browser, tmp_path):  # noqa: F811
    store = Store(tmp_path, f"sqlite:///{tmp_path / 'emugen.db'}", rounds=2)
    with serve(store.app()) as url:
        listing = httpx.get(f"{url}/api/batches", params={"stream": "events"}).json()
        batch_id = listing["items"][0]["batch_id"]
        page = browser.new_page()
        page.goto(f"{url}/batches/{batch_id}")
        page.wait_for_selector("#records-rows tr", timeout=10_000)
        page.wait_for_selector("#gold-rows tr", timeout=10_000)
        found = axe_violations(page)
        assert blocking(found) == [], json.dumps(found, indent=1)


def test_every_dashboard_control_is_reachable_with_the_tab_key(browser, tmp_path):  # noqa: F811
    store = Store(tmp_path, f"sqlite:///{tmp_path / 'emugen.db'}", rounds=2)
    with serve(store.app()) as url:
        page = browser.new_page()
        page.goto(f"{url}/")
        page.wait_for_function(
            "document.getElementById('live').textContent === 'live'", timeout=10_000
        )
        # open every disclosure (the recent-batch table with its batch and Flower links):
        # what it holds must be reachable once shown
        page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
        controls = page.evaluate(
            """() => [...document.querySelectorAll('button, select, input, a[href], textarea')]
                 .filter(e => e.offsetParent !== null && !e.disabled)
                 .map(e => e.outerHTML.slice(0, 80))"""
        )
        assert controls, "the dashboard shows no controls at all"
        reached: set[str] = set()
        for _ in range(len(controls) * 2 + 5):
            page.keyboard.press("Tab")
            reached.add(page.evaluate("document.activeElement.outerHTML.slice(0, 80)"))
        missing = [c for c in controls if c not in reached]
        assert missing == [], f"not reachable with Tab: {missing}"
        # a focused control shows where the focus is (no `outline: none` without a replacement)
        page.focus("button")
        outline = page.evaluate(
            "getComputedStyle(document.activeElement, ':focus-visible').outlineStyle"
        )
        assert outline != "none"


def test_the_page_says_when_the_web_server_is_gone_and_when_it_is_back(browser, tmp_path):  # noqa: F811
    store = Store(tmp_path, f"sqlite:///{tmp_path / 'emugen.db'}", rounds=1)
    text = store.config.read_text(encoding="utf-8")  # a broker nobody listens on: no real Redis
    store.config.write_text(
        text.replace("redis://127.0.0.1:6379/0", f"redis://127.0.0.1:{free_port()}/0"),
        encoding="utf-8",
    )
    port, log = free_port(), tmp_path / "web.log"
    page = browser.new_page()
    with web_server(store.config, port, log):
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function(
            "document.getElementById('live').textContent === 'live'", timeout=10_000
        )
        assert page.is_hidden("#connection")
    # the server is gone: the page says so instead of showing a frozen picture as live
    page.wait_for_function(
        "document.getElementById('live').textContent === 'offline'", timeout=10_000
    )
    assert "unreachable" in (page.text_content("#connection") or "")
    store.add(1)  # the store moves on while the server is down
    with web_server(store.config, port, log):
        page.wait_for_function(
            "document.getElementById('live').textContent === 'live'", timeout=20_000
        )
        assert "Reconnected" in (page.text_content("#connection") or "")
        page.wait_for_function(
            "Number(document.getElementById('count-companies').textContent) >= 2", timeout=5_000
        )
