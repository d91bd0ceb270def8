"""The one error tree: every class lives in emugen.errors and says when it is raised."""

from __future__ import annotations

import ast
import builtins
import importlib
import pkgutil
from pathlib import Path

import pytest

import emugen
from emugen import errors
from emugen.errors import EmugenError

PACKAGE = Path(emugen.__file__).parent
# Exception bases a module could subclass without naming EmugenError.
EXCEPTION_NAMES = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def _import_every_module() -> None:
    # a subclass defined anywhere only shows up in __subclasses__ once its module is imported
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="emugen."):
        if info.name.endswith("__main__"):
            continue  # running it is the CLI itself
        try:
            importlib.import_module(info.name)
        except ImportError:
            continue  # an optional extra (s3, spark) that is not installed here


def _error_classes_defined_in(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """Classes in `path` whose bases name an exception: a builtin one, a *Error/*Exception
    imported from elsewhere, or a class of the same file that is one (to a fixed point)."""
    classes = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)]
    errors_here: dict[str, int] = {}
    grew = True
    while grew:
        grew = False
        for node in classes:
            bases = {ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases}
            is_error = bases & (EXCEPTION_NAMES | errors_here.keys()) or any(
                b.endswith(("Error", "Exception")) for b in bases
            )
            if is_error and node.name not in errors_here:
                errors_here[node.name] = node.lineno
                grew = True
    where = path.relative_to(root)
    return [f"{where}:{line} {name}" for name, line in sorted(errors_here.items())]


def test_every_error_class_lives_in_the_errors_module() -> None:
    _import_every_module()
    elsewhere = [
        f"{c.__module__}.{c.__qualname__}"
        for c in _subclasses(EmugenError)
        if c.__module__ != errors.__name__
    ]
    assert elsewhere == []


@pytest.mark.parametrize("cls", [EmugenError, *_subclasses(EmugenError)], ids=lambda c: c.__name__)
def test_every_error_class_says_when_it_is_raised(cls: type) -> None:
    doc = cls.__dict__.get("__doc__") or ""
    assert doc.startswith("Raised when"), f"{cls.__name__}: {doc!r}"


def test_the_module_docstring_draws_every_class_of_the_tree() -> None:
    drawn = errors.__doc__ or ""
    missing = [c.__name__ for c in _subclasses(EmugenError) if c.__name__ not in drawn]
    assert missing == []


def test_no_module_but_errors_defines_an_exception() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path != PACKAGE / "errors.py":
            offenders += _error_classes_defined_in(path)
    assert offenders == [], "move these into emugen/errors.py: " + ", ".join(offenders)


def test_the_ast_check_finds_an_exception_defined_outside(tmp_path: Path) -> None:
    module = tmp_path / "stray.py"
    module.write_text(
        "class Oops(ValueError):\n    pass\n\n\nclass Worse(Oops):\n    pass\n"
        "\n\nclass Plain:\n    pass\n"
    )
    found = [line.split()[-1] for line in _error_classes_defined_in(module, tmp_path)]
    assert found == ["Oops", "Worse"]


def test_an_unreachable_database_names_the_fix() -> None:
    from emugen.db.session import init_db, make_engine
    from emugen.errors import DatabaseError
    from emugen.fleet.broker import free_port

    # a free port on loopback: nothing listens there, so the connection is refused at once
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test")
    with pytest.raises(DatabaseError, match="EMUGEN_DATABASE_URL.*`emugen db init`"):
        init_db(engine)
