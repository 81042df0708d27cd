"""How results show in a notebook: an HTML table (``_repr_html_``) and ``to_pandas()``.

Jupyter calls ``_repr_html_`` on whatever a cell returns, so a ``FindSlotResult`` or a lease list shows as
a table rather than a wall of repr. Each result says what its rows are (``records``); pandas is imported
only when ``to_pandas()`` is called, so the client never needs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

MAX_HTML_ROWS = 200


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def html_table(records: Sequence[Mapping[str, Any]], caption: str = "") -> str:
    """An HTML table of ``records`` (every value escaped), at most ``MAX_HTML_ROWS`` rows, saying so."""
    columns: list[str] = []
    for r in records:
        columns += [c for c in r if c not in columns]
    shown = records[:MAX_HTML_ROWS]
    more = len(records) - len(shown)
    note = f"{caption} ({len(records)} rows{f', first {len(shown)} shown' if more else ''})"
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_text(r.get(c)))}</td>" for c in columns) + "</tr>" for r in shown
    )
    return (
        f"<table><caption>{escape(note.strip())}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def hosts(placement: Mapping[str, Sequence[str]]) -> str:
    """``gpu: h1; workers: h2, h3``: which host is which component instance."""
    return "; ".join(f"{c}: {', '.join(hs)}" for c, hs in placement.items())


class Tabular:
    """Mixed into result models: ``records()`` (a list of flat dicts) is defined by each result."""

    def records(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return html_table(self.records(), type(self).__name__)

    def to_pandas(self) -> Any:
        """The records as a ``pandas.DataFrame`` (``pip install 'slotbroker[notebook]'``)."""
        try:
            import pandas
        except ImportError:
            raise ImportError("to_pandas() needs pandas: pip install 'slotbroker[notebook]'") from None
        return pandas.DataFrame.from_records(self.records())


class HeatMap:
    """Free capacity of one class as a coloured grid (rows: providers, columns: buckets) for notebooks;
    made by ``CalendarResponse.heatmap``. Plain HTML with inline colours: no plotting library needed."""

    def __init__(
        self, title: str, starts: Sequence[datetime], rows: Sequence[tuple[str, int, Sequence[int]]]
    ):
        self.title = title
        self.starts = list(starts)
        self.rows = list(rows)  # (name, capacity, free per bucket)

    @staticmethod
    def colour(free: int, capacity: int) -> str:
        """White when nothing is free, deepening green as more is."""
        share = 0.0 if capacity <= 0 else max(0.0, min(1.0, free / capacity))
        level = int(255 - 155 * share)
        return f"rgb({level},{255 if share else level},{level})"

    def _repr_html_(self) -> str:
        head = "".join(f"<th title='{escape(s.isoformat())}'>{s:%d %H}</th>" for s in self.starts)
        body = "".join(
            f"<tr><th>{escape(name)}</th>"
            + "".join(
                f"<td style='background:{self.colour(f, cap)}' title='{f}/{cap} free'></td>" for f in free
            )
            + "</tr>"
            for name, cap, free in self.rows
        )
        return f"<table><caption>{escape(self.title)}</caption><tr><th></th>{head}</tr>{body}</table>"
