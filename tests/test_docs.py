"""The docs say what the product is, not how it was built: short README, no diary, links that
resolve. (The site itself is built with `mkdocs build --strict` as a gate of scripts/test.sh.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").rglob("*.md")])
# words of a development log; code (fenced or `inline`) may name e.g. a database `session`
DIARY = re.compile(r"\b(issues?|sessions?)\b|/tmp/", re.IGNORECASE)
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code spans."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)
    return re.sub(r"`[^`\n]*`", "", text)


def test_the_readme_fits_in_150_lines():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_reads_like_a_development_log(page: Path):
    found = [
        (n, m.group(0))
        for n, line in enumerate(prose(page.read_text(encoding="utf-8")).splitlines(), 1)
        for m in DIARY.finditer(line)
    ]
    assert not found, f"{page.relative_to(ROOT)}: {found[:5]}"


@pytest.mark.parametrize("page", [ROOT / "README.md", ROOT / "CHANGELOG.md"], ids=lambda p: p.name)
def test_every_relative_link_in_the_readme_and_changelog_resolves(page: Path):
    missing = [
        target
        for target, _ in LINK.findall(page.read_text(encoding="utf-8"))
        if "://" not in target and not (page.parent / target).exists()
    ]
    assert not missing, f"{page.name} links to missing files: {missing}"


def test_the_config_reference_covers_every_top_level_key():
    import sys

    sys.path.insert(0, str(ROOT / "docs" / "hooks"))
    try:
        import reference
    finally:
        sys.path.pop(0)
    from emugen.settings import Settings

    page = reference.config_reference()
    for key in Settings.model_fields:
        assert f"| `{key}` |" in page, key


def test_the_defect_catalogue_shows_every_defect_with_an_example():
    import sys

    sys.path.insert(0, str(ROOT / "docs" / "hooks"))
    try:
        import reference
    finally:
        sys.path.pop(0)
    from emugen.vocabulary import Defect

    page = reference.defect_catalogue()
    for defect in Defect:
        section = page.split(f"### `{defect.value}`", 1)[1].split("### ", 1)[0]
        assert "```json\n{" in section, defect
