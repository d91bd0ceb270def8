"""The architecture page and the contributing guide cite only files and names that exist.

Checked citations: every path ending in `.py` (under emugen/, tests/ or scripts/, or relative
to emugen/), every backticked dotted name whose leading part is an emugen module
(`fleet.worker.generate`, `pipeline.gold.run`, `status.report.status`), and every
`file.py` (`name`, `name`) pair: the file must exist and define each name at its top level
(a function, class or assignment; `Class.method` for a method).
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "emugen"
DOCS = ("docs/ARCHITECTURE.md", "CONTRIBUTING.md")
PATH = re.compile(r"(?<![\w/.])((?:[\w-]+/)*[\w-]+\.py)\b")
DOTTED = re.compile(r"`([a-z_][\w]*(?:\.[A-Za-z_]\w*)+)(?:\(\))?`")
FILE_NAMES = re.compile(r"`([\w/]+\.py)` \(((?:`\w+(?:\.\w+)?`(?:, )?)+)\)")


def resolve(cited: str) -> Path | None:
    """The file a cited path means: from the repo root, from emugen/, or a unique basename."""
    for base in (REPO, PACKAGE):
        if (base / cited).is_file():
            return base / cited
    if "/" not in cited:
        found = sorted(PACKAGE.rglob(cited))
        return found[0] if len(found) == 1 else None
    return None


@cache
def defined(path: Path) -> frozenset[str]:
    """Top-level names of a module, and `Class.member` for each class's members."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(f"{node.name}.{member.name}")
                elif isinstance(member, ast.AnnAssign) and isinstance(member.target, ast.Name):
                    names.add(f"{node.name}.{member.target.id}")
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return frozenset(names)


def module_file(dotted: str) -> Path | None:
    """The file of emugen module `dotted` (`fleet.worker`, or `emugen.fleet.worker`)."""
    parts = dotted.removeprefix("emugen.").split(".")
    candidate = PACKAGE.joinpath(*parts)
    if candidate.with_suffix(".py").is_file():
        return candidate.with_suffix(".py")
    if (candidate / "__init__.py").is_file():
        return candidate / "__init__.py"
    return None


def dotted_problem(cited: str) -> str | None:
    """Why `module.name` is wrong, or None; None also for a dotted token that is no module."""
    parts = cited.removeprefix("emugen.").split(".")
    for cut in range(len(parts) - 1, 0, -1):
        path = module_file(".".join(parts[:cut]))
        if path is None:
            continue
        name = ".".join(parts[cut:])
        if module_file(".".join(parts)) is not None or name in defined(path):
            return None
        return f"`{cited}`: {path.relative_to(REPO)} defines no {name}"
    return None


def citation_problems(text: str) -> list[str]:
    problems = []
    for cited in sorted(set(PATH.findall(text))):
        if resolve(cited) is None:
            problems.append(f"{cited}: no such file (nor a unique one of that name in emugen/)")
    for cited in sorted(set(DOTTED.findall(text))):
        if cited.endswith(".py"):
            continue  # a file name, checked as a path above
        if cited.split(".")[0] in {"emugen", *(p.stem for p in PACKAGE.iterdir())}:
            problems.extend(filter(None, [dotted_problem(cited)]))
    for cited, names in FILE_NAMES.findall(text):
        path = resolve(cited)
        for name in re.findall(r"`([\w.]+)`", names):
            if path is not None and path.suffix == ".py" and name not in defined(path):
                problems.append(f"{cited} (`{name}`): not defined there")
    return problems


@pytest.mark.parametrize("doc", DOCS)
def test_every_file_and_name_the_doc_cites_exists(doc):
    text = (REPO / doc).read_text(encoding="utf-8")
    assert not citation_problems(text), f"{doc} cites what is not there:\n" + "\n".join(
        citation_problems(text)
    )


def test_the_architecture_page_follows_a_batch_in_at_most_150_lines_without_outside_notes():
    text = (REPO / "docs/ARCHITECTURE.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    assert not re.search(r"DESIGN\.md|NOTES\.md|issue \d+|#\d+", text)


def test_the_checker_catches_a_missing_file_a_missing_function_and_a_wrong_pair():
    planted = (
        "`emugen/fleet/nowhere.py`; `fleet.worker.no_such_function`; "
        "`fleet/worker.py` (`generate`, `not_there`); `fleet.worker.generate`; "
        "`x = x + EXCLUDED.x`"
    )
    assert citation_problems(planted) == [
        "emugen/fleet/nowhere.py: no such file (nor a unique one of that name in emugen/)",
        "`fleet.worker.no_such_function`: emugen/fleet/worker.py defines no no_such_function",
        "fleet/worker.py (`not_there`): not defined there",
    ]
