"""The swap rule is written once (``services/booking/alternates.py``): every booking path that moves a
claim onto stand-in hosts asks ``conflicting_owner`` which host gives way and ``next_alternate`` which
stand-in comes next (or delegates to ``claim_for_lease_swapping``, which does).

The regression: ``lease_rehost`` kept a loop of its own that read the conflict's providers itself
(``offending_providers``) and advanced every stuck host at once, beside the rule lease updates and
offers follow."""

from __future__ import annotations

import ast
from pathlib import Path

import slotbroker.services

SERVICES = Path(slotbroker.services.__file__).parent
RULE = SERVICES / "booking" / "alternates.py"


def names_used(path: Path) -> set[str]:
    """Every name and attribute the module mentions (imports included)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            found.update(a.name for a in node.names)
    return found


def test_stand_in_hosts_are_chosen_by_the_one_rule() -> None:
    modules = {p.relative_to(SERVICES).as_posix(): names_used(p) for p in SERVICES.rglob("*.py") if p != RULE}
    movers = {m for m, names in modules.items() if "alternate_hosts" in names or "next_alternate" in names}
    assert "booking/lease_rehost.py" in movers  # the walk finds the paths that move a claim
    own_reading = sorted(m for m, names in modules.items() if "offending_providers" in names)
    assert not own_reading, f"modules reading a conflict's hosts outside the swap rule: {own_reading}"
    apart = sorted(
        m
        for m in movers
        if not {"conflicting_owner", "next_alternate"} <= modules[m]
        and "claim_for_lease_swapping" not in modules[m]
    )
    assert not apart, f"modules choosing stand-in hosts without alternates' swap rule: {apart}"
