"""``pip install slotbroker`` is the client and the CLI; the server is ``slotbroker[server]`` (issue 14).

The proof: a virtual environment holding only the distributions pyproject's core ``dependencies`` need
(and what they need in turn), taken from this environment's installed copies without the network, imports
``slotbroker.client`` - and cannot import the server's packages at all, so nothing in the client can lean
on them by accident. Building it is symlinks and one ``python -m venv --without-pip`` (about a second)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = ("fastapi", "sqlalchemy", "numpy", "uvicorn", "alembic", "psycopg", "procrastinate")


def _closure(requirements: list[str]) -> set[str]:
    """The installed distributions ``requirements`` need, transitively (markers evaluated, no extras)."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = req.name.lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        todo += [Requirement(r) for r in metadata.requires(name) or []]
    return seen


def _link_distribution(name: str, site: Path) -> None:
    """Symlink the distribution's top-level modules and its metadata into ``site``."""
    dist = metadata.distribution(name)
    tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
    for top in tops:
        if top in ("__pycache__", "bin") or top.endswith(".pth"):
            continue
        source = Path(str(dist.locate_file(top)))
        if source.exists() and not (site / top).exists():
            (site / top).symlink_to(source)


def test_the_client_imports_with_the_core_dependencies_only(tmp_path: Path) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = project["dependencies"]
    server = {Requirement(r).name.lower() for r in project["optional-dependencies"]["server"]}
    assert {"fastapi", "sqlalchemy", "numpy"} <= server
    assert not {Requirement(r).name.lower() for r in core} & server
    needed = _closure(core)
    assert not needed & {"fastapi", "sqlalchemy", "numpy", "starlette"}, needed
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    for name in sorted(needed):
        _link_distribution(name, site)
    (site / "slotbroker-src.pth").write_text(str(ROOT / "src") + "\n")
    code = (
        "import importlib.util, json\n"
        "import slotbroker.client, slotbroker.wire.sites, slotbroker.wire.calendar_feeds\n"
        "import slotbroker.cli.main\n"  # the CLI too: its user commands need only the client
        f"print(json.dumps([m for m in {list(SERVER_ONLY)!r} if importlib.util.find_spec(m)]))\n"
    )
    out = subprocess.run(
        [str(python), "-I", "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"  # the server's packages are not there at all
