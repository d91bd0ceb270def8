"""The layout's rules, checked from the source: module sizes and the import graph of emugen/."""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterator
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "emugen"
MAX_LINES = 300  # physical lines, before the formatter
MAX_LOGICAL = 250  # the same modules' statements, comment and docstring lines
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


def import_sites(module: str, path: Path, modules: set[str]) -> Iterator[tuple[str, int]]:
    """(emugen module imported, line) for each run-time import in `module`, in functions too."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if target := _known(alias.name, modules):
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = _base_of(module, is_package, node)
            for alias in node.names:
                # `from emugen.pipeline import gold` imports the module gold, not just the package
                target = _known(f"{base}.{alias.name}", modules) or _known(base, modules)
                if target:
                    yield target, node.lineno


def imports_of(module: str, path: Path, modules: set[str]) -> set[str]:
    """The emugen modules `module` imports at run time, including inside functions."""
    return {target for target, _ in import_sites(module, path, modules)} - {module}


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


def logical_lines(source: str) -> int:
    """Statements, comment lines and docstring lines, as tokenize counts them: what a reader
    reads, however the formatter spreads a call or a signature over physical lines."""
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    statements = sum(1 for t in tokens if t.type == tokenize.NEWLINE)
    comments = sum(1 for t in tokens if t.type == tokenize.COMMENT)
    text = sum(t.end[0] - t.start[0] for t in tokens if t.type == tokenize.STRING)
    return statements + comments + text


def test_no_module_is_over_its_size_in_logical_lines():
    # ruff format puts a long signature or call one argument per line, so physical lines grew by
    # a fifth to a half when it was adopted, with no module saying more; the rule counts what
    # is read. MAX_LOGICAL is what MAX_LINES physical lines held before the formatter.
    too_long = {
        str(path.relative_to(PACKAGE_ROOT.parent)): lines
        for path in source_files().values()
        if (lines := logical_lines(path.read_text(encoding="utf-8"))) > MAX_LOGICAL
    }
    assert not too_long, (
        f"modules over {MAX_LOGICAL} logical lines (split them by noun): {too_long}"
    )


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


# -- layers: an import may only point down (or stay within its own package) ------------------

# Lowest first. Each entry is one layer: its name and the packages (or root modules) in it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "vocabulary/errors/contract",
        ("emugen", "emugen.vocabulary", "emugen.errors", "emugen.contract"),
    ),
    ("files", ("emugen.files",)),
    ("settings", ("emugen.settings",)),
    ("generate", ("emugen.generate",)),
    ("db", ("emugen.db",)),
    ("sinks", ("emugen.sinks",)),  # the landing zone: the pipeline lands and prunes its files
    ("pipeline", ("emugen.pipeline",)),
    ("export/grade/backfill", ("emugen.export", "emugen.grade", "emugen.backfill")),
    ("fleet", ("emugen.fleet", "emugen.celery")),  # celery.py: Celery's entry into fleet/
    ("status", ("emugen.status",)),
    ("web/lab", ("emugen.web", "emugen.lab")),
    ("cli", ("emugen.cli", "emugen.__main__")),
)


def unit_of(module: str) -> str:
    """The package (`emugen.pipeline`) or root module (`emugen.errors`) a module lies in."""
    return ".".join(module.split(".")[:2])


def layer_of(unit: str) -> int | None:
    return next((rank for rank, (_, units) in enumerate(LAYERS) if unit in units), None)


def _where(module: str, line: int) -> str:
    return f"{source_files()[module].relative_to(PACKAGE_ROOT.parent)}:{line}"


def upward_imports(sites: dict[str, list[tuple[str, int]]]) -> list[str]:
    """Each import that points up a layer, as `file:line module -> target (layer a < b)`."""
    found = []
    for module, targets in sorted(sites.items()):
        for target, line in targets:
            low, high = layer_of(unit_of(module)), layer_of(unit_of(target))
            if low is not None and high is not None and high > low:
                found.append(
                    f"{_where(module, line)}: {module} -> {target} points up from "
                    f"{LAYERS[low][0]} (layer {low}) to {LAYERS[high][0]} "
                    f"(layer {high})"
                )
    return found


def all_import_sites() -> dict[str, list[tuple[str, int]]]:
    files = source_files()
    modules = set(files)
    return {
        name: [(t, line) for t, line in import_sites(name, path, modules) if t != name]
        for name, path in files.items()
    }


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    units: dict[str, set[str]] = {}
    for module, targets in graph.items():
        units.setdefault(unit_of(module), set()).update(
            unit_of(t) for t in targets if unit_of(t) != unit_of(module)
        )
    return units


def layer_map() -> str:
    units = package_graph(import_graph())
    lines = ["layers, lowest first (an import may only point down):"]
    for rank, (name, members) in enumerate(LAYERS):
        below = sorted({t for m in members for t in units.get(m, ())})
        lines.append(f"  {rank:2} {name:27} {', '.join(members)}")
        lines.append(f"     {'':27} imports: {', '.join(below) or '-'}")
    return "\n".join(lines)


def test_every_package_and_root_module_has_a_declared_layer():
    undeclared = sorted({unit_of(m) for m in source_files()} - {u for _, us in LAYERS for u in us})
    assert not undeclared, f"add these to a layer in LAYERS (tests/test_structure.py): {undeclared}"


def test_no_import_points_up_a_layer():
    print("\n" + layer_map())  # `pytest tests/test_structure.py -s` shows the map
    upward = upward_imports(all_import_sites())
    assert not upward, (
        "imports pointing up a layer (move the code down, or the import up):\n" + "\n".join(upward)
    )


def test_the_packages_have_no_import_circle():
    graph = package_graph(import_graph())
    circles = [c for c in strongly_connected(graph) if len(c) > 1]
    details = [
        " ; ".join(f"{a} -> {b}" for a in c for b in sorted(graph[a]) if b in c) for c in circles
    ]
    assert not circles, "package import circles (edges inside each):\n" + "\n".join(details)


def test_the_root_of_the_package_keeps_at_most_six_modules():
    root = sorted(p.name for p in PACKAGE_ROOT.glob("*.py"))
    assert len(root) <= 6, f"emugen/ root modules (put the rest in a package): {root}"


def test_an_upward_import_is_named_by_file_line_and_both_layers():
    """Guards the layer check itself: a planted edge from db up to the pipeline is caught."""
    planted = {
        "emugen.db.migrate": [("emugen.pipeline.gold", 7)],
        "emugen.pipeline.gold": [("emugen.db.models", 3)],
    }
    assert upward_imports(planted) == [
        "emugen/db/migrate.py:7: emugen.db.migrate -> emugen.pipeline.gold points up from "
        "db (layer 4) to pipeline (layer 6)"
    ]
