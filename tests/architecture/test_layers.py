"""Layers point inward: ``services/`` builds no SQL, so it does not import SQLAlchemy; statements live
in ``store/`` (repositories reached through the unit of work). Imports under ``if TYPE_CHECKING:`` are
annotations only and do not count."""

from __future__ import annotations

import ast
from pathlib import Path

import slotbroker.services

SERVICES = Path(slotbroker.services.__file__).parent


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_sqlalchemy(path: Path) -> bool:
    """Whether the module imports ``sqlalchemy`` at run time (deferred imports inside functions count)."""
    skipped: set[int] = set()
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "sqlalchemy" for a in node.names):
            return True
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").split(".")[0] == "sqlalchemy"
        ):
            return True
    return False


def test_services_import_no_sqlalchemy() -> None:
    modules = {p.relative_to(SERVICES).as_posix(): p for p in sorted(SERVICES.rglob("*.py"))}
    assert len(modules) > 20, modules  # the walk found the package
    offenders = sorted(name for name, path in modules.items() if imports_sqlalchemy(path))
    assert not offenders, f"services modules importing SQLAlchemy (move their SQL into store/): {offenders}"
