"""The batch page in a real Chromium, over a batch a real fleet made (redis, worker, beat, web)."""

from __future__ import annotations

import json
import os
import shutil

from sqlalchemy import select, update

from emugen.db.models import BatchRow, InjectedDefect, Quarantine
from emugen.db.session import read_session, write_session
from emugen.fleet.broker import free_port
from emugen.vocabulary import DEFECTS_FOR, Stream
from tests.integration.conftest import wait_for
from tests.integration.test_dashboard_browser import _answers, browser, pytestmark  # noqa: F401 - the browser fixture

# Set to copy the screenshot somewhere (e.g. docs/assets/batch-page.png); always saved in tmp_path.
SCREENSHOT_ENV = "EMUGEN_BATCH_PAGE_PNG"
EVERY_DEFECT = {d.value for d in DEFECTS_FOR[Stream.events]}


def _batch_with_every_defect(fleet) -> str | None:  # noqa: ANN001
    with read_session(fleet.engine()) as session:
        for batch_id, by_type in session.execute(
            select(BatchRow.batch_id, BatchRow.injected_by_type).where(
                BatchRow.stream == "events", BatchRow.status == "gold"
            )
        ):
            if set(json.loads(by_type)) >= EVERY_DEFECT:
                return batch_id
    return None


def _verdicts(page) -> dict[str, str]:  # noqa: ANN001
    return page.evaluate("""Object.fromEntries([...document.querySelectorAll(
        '#records-rows tr')].map(tr => [tr.id, tr.dataset.verdict]))""")


def test_the_page_of_a_batch_with_every_defect_shows_them_caught_then_a_tampered_mismatch(
    fleet,
    browser,  # noqa: F811 - pytest's fixture
    tmp_path,
):
    # 300 events at 30 %: about 90 defects, so a batch holds all ten types
    fleet.write(interval=2, size=(300, 300))
    _, beat = fleet.start()
    port = free_port()
    fleet.spawn("web", "-m", "emugen", "web", "--port", str(port), "--config", str(fleet.config))
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(f"{url}/api/health"), 20, "emugen web to answer")
    batch_id = wait_for(
        lambda: _batch_with_every_defect(fleet),
        40,
        "an events batch in gold holding every defect type",
    )
    fleet.stop(beat)  # one batch is all this test reads

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{url}/batches/{batch_id}?size=500")
    page.wait_for_selector("#records-rows tr")
    assert page.text_content("#fact-status") == "gold"
    assert page.get_attribute("#batch-link", "href") == f"/batches/{batch_id}"

    # "only problems", from the keyboard: every injected row, each with its defect, caught
    page.focus("#only-problems")
    page.keyboard.press("Space")
    page.wait_for_function("location.search.includes('problems=only')")
    page.wait_for_function(
        "[...document.querySelectorAll('#records-rows tr')]"
        ".every(tr => tr.dataset.verdict !== 'clean')"
    )
    verdicts = _verdicts(page)
    with read_session(fleet.engine()) as session:
        truth = {
            n: d
            for n, d in session.execute(
                select(InjectedDefect.row_no, InjectedDefect.defect).where(
                    InjectedDefect.batch_id == batch_id
                )
            )
        }
    assert verdicts == {f"row-{n}": "caught" for n in truth}
    shown = {page.text_content(f"#row-{n} td.truth b") for n in truth}
    assert shown == EVERY_DEFECT
    shot = tmp_path / "batch-page.png"
    page.screenshot(path=str(shot), full_page=False)
    if os.environ.get(SCREENSHOT_ENV):
        shutil.copyfile(shot, os.environ[SCREENSHOT_ENV])

    # a tampered reason in the store reads as a mismatch after a reload; the rest stay caught
    victim = min(n for n, d in truth.items() if d != "schema_mismatch")
    with write_session(fleet.engine()) as session:
        session.execute(
            update(Quarantine)
            .where(Quarantine.batch_id == batch_id, Quarantine.row_no == victim)
            .values(reason="schema_mismatch")
        )
    page.reload()
    page.wait_for_selector(f"#row-{victim}[data-verdict='mismatch']")
    after = _verdicts(page)
    assert after.pop(f"row-{victim}") == "mismatch"
    assert set(after.values()) == {"caught"}
    assert "quarantine: schema_mismatch" in (page.text_content(f"#row-{victim} td.went") or "")

    # the replay button runs `emugen replay` for the batch and shows its verdict
    page.get_by_role("button", name="Replay this batch").click()
    page.wait_for_function(
        "document.getElementById('replay-verdict').textContent.includes('identical')",
        timeout=20_000,
    )
    assert page.get_attribute("#next-batch", "href", timeout=1000) is not None
    assert errors == []


def test_the_page_of_an_unknown_batch_says_so(fleet, browser):  # noqa: F811
    fleet.write(interval=60)
    port = free_port()
    fleet.spawn("web", "-m", "emugen", "web", "--port", str(port), "--config", str(fleet.config))
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(f"{url}/api/health"), 20, "emugen web to answer")
    page = browser.new_page()
    response = page.goto(f"{url}/batches/events-000000042")
    assert response is not None and response.status == 404
    assert "no batch events-000000042" in (page.text_content("#error") or "")
    assert page.is_disabled("#replay")
