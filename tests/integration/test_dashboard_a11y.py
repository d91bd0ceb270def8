"""The dashboard for keyboards and screen readers (axe-core in Chromium), and across a restart."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from emugen.fleet.broker import free_port
from emugen.web.app import create_app
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


def test_late_and_redelivered_rows_are_marked_and_a_copy_links_to_its_original_accessibly(
    browser,  # noqa: F811 - pytest's fixture
    tmp_path,
):
    """Over a store with arrival conditions and a naive consumer's gold configured: each
    late or redelivered row shows its mark, a copy's link opens its original row, the gold
    verdict and causes show, and the page stays free of serious axe violations."""
    from sqlalchemy import select

    from emugen.db.ledger import ArrivalEntry
    from emugen.db.session import engine_for, init_db, read_session
    from emugen.pipeline.runner import run_pipeline
    from tests.test_arrival_pipeline import arriving_settings
    from tests.test_web_arrivals import _naive_gold, arrival_config

    database_url = f"sqlite:///{tmp_path / 'emugen.db'}"
    engine = engine_for(database_url)
    init_db(engine)
    run_pipeline(engine, arriving_settings(), 6, size=60)
    config = arrival_config(tmp_path, database_url)
    gold = _naive_gold(config, tmp_path)
    config = arrival_config(tmp_path, database_url, {"gold": str(gold)})
    with read_session(engine) as session:
        marked = session.execute(
            select(ArrivalEntry.batch_id, ArrivalEntry.row_no, ArrivalEntry.condition).where(
                ArrivalEntry.condition.in_(("late", "redelivered"))
            )
        ).all()
    copy = next(m for m in marked if m[2] == "redelivered")
    batch_id = copy[0]
    expected = {f"row-{r}": c for b, r, c in marked if b == batch_id}
    with serve(create_app(config, probe=_probe(config), environ={})) as url:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/batches/{batch_id}?size=500")
        page.wait_for_selector("#records-rows tr", timeout=10_000)
        page.wait_for_selector("#answer:not([hidden]) #answer-rows tr", timeout=30_000)
        shown = page.evaluate("""Object.fromEntries([...document.querySelectorAll(
            '#records-rows tr[data-arrival]')].map(tr => [tr.id, tr.dataset.arrival]))""")
        assert shown == expected
        mark = page.text_content(f"#row-{copy[1]} td.arrival") or ""
        assert mark.startswith("redelivered copy of ")
        late = next((r for r, c in expected.items() if c == "late"), None)
        if late is not None:
            text = page.text_content(f"#{late} td.arrival") or ""
            assert text.startswith("late by ") and "belongs to window" in text
        assert page.text_content("#answer-verdict") == "FAIL"
        assert "redelivered counted" in (page.text_content("#answer-causes") or "")
        found = axe_violations(page)
        assert blocking(found) == [], json.dumps(found, indent=1)
        # the copy's link opens the original batch's page at the original row, highlighted
        link = page.locator(f"#row-{copy[1]} td.arrival a")
        original = link.text_content() or ""
        link.click()
        original_batch, _, original_row = original.partition(" row ")
        page.wait_for_selector(f"#row-{original_row}.target", timeout=10_000)
        assert page.url.split("/batches/")[1].startswith(original_batch)
        # the dashboard's grading panel: the verdict, causes and the three worst cells
        page.goto(f"{url}/")
        page.wait_for_selector("#external-gold:not([hidden]) #gold-worst > li", timeout=30_000)
        assert page.text_content("#gold-verdict") == "FAIL"
        assert page.locator("#gold-worst > li").count() == 3
        assert "redelivered counted" in (page.text_content("#gold-causes") or "")
        found = axe_violations(page)
        assert blocking(found) == [], json.dumps(found, indent=1)
        assert errors == []


def _probe(config: Path) -> Any:
    import fakeredis

    from emugen.settings import load_settings
    from emugen.web.probe import BrokerProbe

    settings = load_settings(config, env=False)
    return BrokerProbe(
        settings.broker_url, client=fakeredis.FakeRedis(), pinger=lambda: {"w@h": {"ok": "pong"}}
    )


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
