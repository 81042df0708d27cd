"""The HTML report of a replay: the JSON figures as a table and three plots (utilisation over time,
wait distribution, slowdown by job size), all inline, so the file can be mailed or archived alone."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

import numpy as np

from slotbroker.replay.metrics import arrays, bounded_slowdowns
from slotbroker.replay.runner import PolicyResult
from slotbroker.replay.simulate import Run
from slotbroker.replay.svg import bar_chart, line_chart

DAY_S = 86400
SIZE_BUCKETS = ((1, 1), (2, 4), (5, 16), (17, 64), (65, 1 << 30))


def utilisation_by_day(run: Run) -> tuple[list[float], list[float]]:
    """(day index, share of the machine's processor-seconds used that day) from first submit on."""
    wait, runtime, procs = arrays(run)
    starts = np.asarray(run.starts, dtype=np.float64)
    first = min(j.submit for j in run.jobs)
    last = float((starts + runtime).max())
    edges = np.arange(first, last + DAY_S, DAY_S, dtype=np.float64)
    # processor-seconds used before each edge: sum of procs x clip(edge - start, 0, run)
    used = np.zeros(edges.shape[0])
    for k in range(0, len(starts), 4096):
        s, r, p = starts[k : k + 4096], runtime[k : k + 4096], procs[k : k + 4096]
        used += (np.clip(edges[:, None] - s[None, :], 0, r[None, :]) * p[None, :]).sum(axis=1)
    per_day = np.diff(used) / (run.capacity * DAY_S)
    del wait
    return list(range(len(per_day))), per_day.tolist()


def wait_quantiles(run: Run) -> tuple[list[float], list[float]]:
    """(percentile, wait in hours) at every percent."""
    wait, _, _ = arrays(run)
    qs = list(range(0, 101))
    return [float(q) for q in qs], (np.percentile(wait, qs) / 3600).tolist()


def slowdown_by_size(run: Run) -> list[float]:
    wait, runtime, procs = arrays(run)
    bsld = bounded_slowdowns(wait, runtime)
    out = []
    for lo, hi in SIZE_BUCKETS:
        mask = (procs >= lo) & (procs <= hi)
        out.append(float(bsld[mask].mean()) if mask.any() else 0.0)
    return out


def _size_label(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else (f"{lo}+" if hi >= 1 << 30 else f"{lo}-{hi}")


def _table(doc: dict[str, Any]) -> str:
    cols = [
        "avg_bounded_slowdown",
        "mean_wait_s",
        "wait_p50_s",
        "wait_p90_s",
        "wait_p99_s",
        "utilization",
        "violations",
        "wall_s",
    ]
    head = "".join(f"<th>{escape(c)}</th>" for c in ["policy", *cols])
    rows = []
    for name, figures in doc["policies"].items():
        cells = "".join(f"<td>{escape(str(figures.get(c, '')))}</td>" for c in cols)
        rows.append(f"<tr><td>{escape(name)}</td>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def charts(results: Sequence[PolicyResult]) -> dict[str, str]:
    """The three plots as SVG documents, by file stem."""
    util = {r.run.policy: utilisation_by_day(r.run) for r in results}
    waits = {r.run.policy: wait_quantiles(r.run) for r in results}
    sizes = {r.run.policy: slowdown_by_size(r.run) for r in results}
    return {
        "utilisation": line_chart("Utilisation per day", "day", "share of processors", util),
        "waits": line_chart(
            "Wait distribution",
            "percentile of jobs (waits of 0 s are off the log scale)",
            "wait (hours, log)",
            waits,
            log_y=True,
        ),
        "slowdown_by_size": bar_chart(
            "Average bounded slowdown by job size",
            "processors",
            "avg bounded slowdown",
            [_size_label(lo, hi) for lo, hi in SIZE_BUCKETS],
            sizes,
        ),
    }


def render_html(doc: dict[str, Any], results: Sequence[PolicyResult], extra: str = "") -> str:
    """The report page for ``doc`` (``runner.result_json``) and the runs behind it."""
    published = doc.get("published") or {}
    pub = "".join(f"<li>{escape(k)}: {v}</li>" for k, v in published.items())
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>slotbroker replay: {escape(str(doc['trace']))}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"
        f"<h1>Replay of {escape(str(doc['trace']))}</h1>"
        f"<p>{doc['jobs']} jobs on {doc.get('capacity', '?')} processors.</p>"
        + _table(doc)
        + (f"<p>Published average bounded slowdown (predictsim):</p><ul>{pub}</ul>" if pub else "")
        + extra
        + "".join(f"<div>{c}</div>" for c in charts(results).values())
        + "</body></html>"
    )
