"""Every ``slotbroker ...`` command the docs, the README, the portal's pages and the code's own messages
tell people to run names a command the CLI has: a renamed or moved command (``token create`` went under
``admin``) must not leave a hint that fails with "No such command"."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from slotbroker.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
PLACES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").rglob("*.md")),
    *sorted((ROOT / "src" / "slotbroker" / "portal" / "static").glob("*.js")),
    *sorted((ROOT / "src" / "slotbroker").rglob("*.py")),
]
SPAN = re.compile(r"`+([^`\n]+)`+")  # `code` and ``code``
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
# a command where a shell would start one: the start of the span or line (after a prompt), or after
# $( | && ;
COMMAND = re.compile(r"(?:^\s*(?:\$\s+)?|\$\(|\|\s*|&&\s*|;\s*)slotbroker((?:\s+[a-z][a-z0-9-]*)+)")


def snippets(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    found = SPAN.findall(text)
    if path.suffix == ".md":
        found += [line for block in FENCE.findall(text) for line in block.splitlines()]
    return found


def named_commands() -> list[tuple[str, str]]:
    out = []
    for path in PLACES:
        for snippet in snippets(path):
            for m in COMMAND.finditer(snippet):
                out.append((str(path.relative_to(ROOT)), "slotbroker" + m.group(1)))
    return out


NAMED = named_commands()


def resolves(words: list[str]) -> bool:
    """The words name a command: each word a subcommand of the group before it, until a leaf command
    (whose further words are its arguments)."""
    cmd: Any = typer.main.get_command(app)
    for i, word in enumerate(words):
        if not hasattr(cmd, "commands"):
            return i > 0  # a leaf: the rest are its arguments
        if word not in cmd.commands:
            return False
        cmd = cmd.commands[word]
    return True


def test_the_docs_name_many_commands() -> None:
    assert len(NAMED) > 80  # the scan finds them (a broken pattern would pass everything below)
    assert {"slotbroker admin token create", "slotbroker find-slot"} <= {c for _, c in NAMED}


@pytest.mark.parametrize(("where", "command"), sorted(set(NAMED)))
def test_a_named_command_exists(where: str, command: str) -> None:
    assert resolves(command.split()[1:]), f"{where}: `{command}` is not a slotbroker command"


@pytest.mark.parametrize(
    ("command", "real"),
    [
        ("slotbroker token create", False),
        ("slotbroker admin token create", True),
        ("slotbroker lease show exp-2", True),
        ("slotbroker admin", True),
        ("slotbroker replay trace", True),
        ("slotbroker jobs frobnicate", False),
    ],
)
def test_the_check_tells_a_command_from_a_typo(command: str, real: bool) -> None:
    assert resolves(command.split()[1:]) is real
