"""The layout's rules, checked from the source: module sizes and the import graph of emugen/."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "emugen"
MAX_LINES = 300
STAGES = ("bronze", "silver", "gold", "reconcile")


def module_name(path: Path) -> str:
    """`emugen/pipeline/gold.py` -> `emugen.pipeline.gold`; a package's `__init__` is itself."""
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE_ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, skipping the bodies of `if TYPE_CHECKING:` (those imports never run)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _base_of(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a `from … import` names, resolving leading dots."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def _known(name: str, modules: set[str]) -> str | None:
    """The longest emugen module that `name` is or lies within (attributes are dropped)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: set[str]) -> set[str]:
    """The emugen modules `module` imports at run time, including inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(filter(None, (_known(a.name, modules) for a in node.names)))
        elif isinstance(node, ast.ImportFrom):
            base = _base_of(module, is_package, node)
            for alias in node.names:
                # `from emugen.pipeline import gold` imports the module gold, not just the package
                target = _known(f"{base}.{alias.name}", modules) or _known(base, modules)
                if target:
                    found.add(target)
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    files = source_files()
    modules = set(files)
    return {name: imports_of(name, path, modules) for name, path in files.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative so a deep graph cannot hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def forbidden_edges(importer: str, forbidden: tuple[str, ...]) -> list[str]:
    """Edges `a -> b` where a lies within `importer` and b within one of `forbidden`."""
    return sorted(
        f"{source} -> {target}"
        for source, targets in import_graph().items()
        if _within(source, importer)
        for target in targets
        if any(_within(target, f) for f in forbidden)
    )


def test_no_module_outside_the_cli_and_the_lab_is_over_300_lines():
    too_long = {
        str(path.relative_to(PACKAGE_ROOT.parent)): lines
        for name, path in source_files().items()
        if not (_within(name, "emugen.cli") or _within(name, "emugen.lab"))
        and (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not too_long, f"modules over {MAX_LINES} lines (split them by noun): {too_long}"


def test_the_package_has_no_import_circle():
    graph = import_graph()
    circles = [c for c in strongly_connected(graph) if len(c) > 1]
    details = [
        " ; ".join(f"{a} -> {b}" for a in circle for b in sorted(graph[a]) if b in circle)
        for circle in circles
    ]
    assert not circles, "import circles (edges inside each):\n" + "\n".join(details)


def test_the_generators_import_nothing_from_the_store_pipeline_celery_or_web():
    edges = forbidden_edges(
        "emugen.generate", ("emugen.db", "emugen.pipeline", "emugen.celery", "emugen.web")
    )
    assert not edges, f"emugen/generate/ must stay pure: {edges}"


def test_the_pipeline_imports_nothing_from_web_tasks_or_the_lab():
    edges = forbidden_edges("emugen.pipeline", ("emugen.web", "emugen.fleet.tasks", "emugen.lab"))
    assert not edges, f"emugen/pipeline/ must not reach up: {edges}"


def test_no_stage_imports_another_stage():
    stages = tuple(f"emugen.pipeline.{s}" for s in STAGES)
    edges = [
        edge
        for stage in stages
        for edge in forbidden_edges(stage, tuple(s for s in stages if s != stage))
    ]
    assert not edges, f"stages meet only through the store and StageResult: {edges}"


def test_beats_scheduler_does_not_import_the_tasks_module():
    edges = forbidden_edges("emugen.fleet.schedule", ("emugen.fleet.tasks",))
    assert not edges, f"beat must not load the worker's module: {edges}"


def test_the_import_graph_sees_relative_function_level_and_from_imports(tmp_path):
    """Guards the checker itself: a graph that saw nothing would pass every rule above."""
    graph = import_graph()
    assert "emugen.pipeline" in {m.rpartition(".")[0] for m in graph}
    assert any(graph.values()), "the import graph found no edges at all"
    module = "emugen.pipeline.example"
    modules = {"emugen.pipeline", "emugen.pipeline.gold", "emugen.db.models", "emugen.web", module}
    tree_source = (
        "from typing import TYPE_CHECKING\n"
        "from . import gold\n"
        "if TYPE_CHECKING:\n"
        "    import emugen.web\n"
        "def f():\n"
        "    from ..db.models import Thing\n"
    )
    probe = tmp_path / "example.py"
    probe.write_text(tree_source, encoding="utf-8")
    found = imports_of(module, probe, modules)
    assert found == {"emugen.pipeline.gold", "emugen.db.models"}


def test_circle_detection_finds_a_cycle_and_ignores_a_chain():
    cycle = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert [c for c in strongly_connected(cycle) if len(c) > 1] == [["a", "b", "c"]]
    chain = {"a": {"b"}, "b": {"c"}, "c": set()}
    assert all(len(c) == 1 for c in strongly_connected(chain))
