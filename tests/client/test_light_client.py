"""The Python client stays light: it loads the wire models and the domain, never the server.

``import slotbroker.client`` must not pull numpy, SQLAlchemy, FastAPI or any engine, store, services or
api module, so the client can be installed and imported apart from the server, and a change inside the
server cannot break it. The wire package is what keeps it so: these tests read its imports.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "slotbroker"
HEAVY = ("numpy", "sqlalchemy", "fastapi", "starlette", "uvicorn", "procrastinate", "pandas")
# Optional libraries a wire module may import inside a function only (HEAVY proves they are not loaded
# with the client): pandas for ``to_pandas()`` (wire/display.py, the ``notebook`` extra).
OPTIONAL = ("pandas",)
SERVER_SIDE = ("slotbroker.engine", "slotbroker.store", "slotbroker.services", "slotbroker.api")


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, at any depth (functions and ``if TYPE_CHECKING:`` included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(SRC).with_suffix("").parts[:-1])
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            # ``from slotbroker.wire import providers`` imports the module slotbroker.wire.providers
            found += [
                (node.lineno, f"{name}.{alias.name}")
                for alias in node.names
                if (SRC / Path(*name.split(".")) / f"{alias.name}.py").exists()
            ]
    return found


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_import_client_loads_no_server_module() -> None:
    code = "import json, sys\nimport slotbroker.client\nprint(json.dumps(sorted(sys.modules)))\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    loaded = json.loads(out.stdout)
    heavy = [m for m in loaded if _within(m, HEAVY)]
    server = [m for m in loaded if _within(m, SERVER_SIDE)]
    assert heavy == [], f"import slotbroker.client loads {heavy}"
    assert server == [], f"import slotbroker.client loads {server}"
    assert "slotbroker.wire.providers" in loaded  # the check above ran on the real client


def test_wire_imports_only_domain_pydantic_and_stdlib() -> None:
    allowed = ("pydantic", "slotbroker.domain", "slotbroker.wire", *OPTIONAL)
    wrong = [
        f"{path.relative_to(SRC)}:{line} imports {name}"
        for path in sorted((PACKAGE / "wire").glob("*.py"))
        for line, name in _imports(path)
        if name.split(".")[0] not in sys.stdlib_module_names and not _within(name, allowed)
    ]
    assert wrong == []
    assert len(list((PACKAGE / "wire").glob("*.py"))) > 5  # the walk found the package


def test_client_imports_only_wire_domain_and_itself() -> None:
    allowed = ("slotbroker.client", "slotbroker.wire", "slotbroker.domain")
    wrong = [
        f"{path.relative_to(SRC)}:{line} imports {name}"
        for path in sorted((PACKAGE / "client").glob("*.py"))
        for line, name in _imports(path)
        if _within(name, ("slotbroker",)) and name != "slotbroker" and not _within(name, allowed)
    ]
    assert wrong == []
