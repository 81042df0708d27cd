"""VLAN tag sets written as ranges, e.g. ``"100-200,300-350"``.

Kept as a sorted tuple of inclusive ``(low, high)`` ranges, merged, so equality and export are canonical
(an exported topology imports as a no-op).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

VLAN_MIN = 1
VLAN_MAX = 4094


@dataclass(frozen=True)
class VlanSet:
    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, text: str) -> VlanSet:
        """Parse ``"100-200,300,400-410"``; raises ``ValueError`` saying which part is wrong."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("VLAN ranges must be a non-empty string such as '100-200,300-350'")
        pairs: list[tuple[int, int]] = []
        for raw in text.split(","):
            part = raw.strip()
            low_s, sep, high_s = part.partition("-")
            try:
                low = int(low_s)
                high = int(high_s) if sep else low
            except ValueError:
                raise ValueError(f"{part!r} is not a VLAN tag or range like '100-200'") from None
            if low > high:
                raise ValueError(f"range {part!r} ends before it starts")
            if low < VLAN_MIN or high > VLAN_MAX:
                raise ValueError(f"range {part!r} is outside {VLAN_MIN}-{VLAN_MAX}")
            pairs.append((low, high))
        return cls(_merge(pairs))

    def __str__(self) -> str:
        return ",".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in self.ranges)

    def __len__(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.ranges)

    def __contains__(self, tag: object) -> bool:
        return isinstance(tag, int) and any(lo <= tag <= hi for lo, hi in self.ranges)

    def __iter__(self) -> Iterator[int]:
        for lo, hi in self.ranges:
            yield from range(lo, hi + 1)


def _merge(pairs: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(pairs):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)
