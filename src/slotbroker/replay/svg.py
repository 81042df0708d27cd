"""Small inline SVG charts for the HTML report: no plotting library, the report is one self-contained file."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
W, H, L, R, T, B = 720, 320, 64, 150, 30, 44  # size and margins (right: the legend)


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:.2g}"
    return f"{v:.3g}"


def _frame(title: str, xlabel: str, ylabel: str, body: list[str], names: Sequence[str]) -> str:
    legend = [
        f'<rect x="{W - R + 12}" y="{T + 18 * i}" width="12" height="12" fill="{PALETTE[i % len(PALETTE)]}"/>'
        f'<text x="{W - R + 30}" y="{T + 18 * i + 11}" font-size="12">{escape(n)}</text>'
        for i, n in enumerate(names)
    ]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">'
        f'<text x="{L}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>'
        f'<text x="{(L + W - R) / 2}" y="{H - 6}" font-size="12" text-anchor="middle">{escape(xlabel)}</text>'
        f'<text x="14" y="{(T + H - B) / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {(T + H - B) / 2})">{escape(ylabel)}</text>'
        f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#999"/>'
        + "".join(body)
        + "".join(legend)
        + "</svg>"
    )


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        return [10.0**k for k in range(math.floor(lo), math.ceil(hi) + 1)]
    step = (hi - lo) / 4 or 1.0
    return [lo + step * k for k in range(5)]


def line_chart(
    title: str,
    xlabel: str,
    ylabel: str,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    log_y: bool = False,
) -> str:
    """One polyline per series; ``log_y`` plots log10 of the positive values."""
    tr = (lambda v: math.log10(v) if v > 0 else None) if log_y else (lambda v: v)
    pts = {n: [(x, tr(y)) for x, y in zip(xs, ys, strict=True)] for n, (xs, ys) in series.items()}
    xs_all = [x for p in pts.values() for x, y in p if y is not None]
    ys_all = [y for p in pts.values() for _, y in p if y is not None]
    if not xs_all:
        return _frame(title, xlabel, ylabel, [], list(series))
    x0, x1 = min(xs_all), max(xs_all)
    y0, y1 = min(ys_all), max(ys_all)
    if log_y:
        y0, y1 = math.floor(y0), math.ceil(y1)
    else:
        y0 = min(y0, 0.0)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def px(x: float) -> float:
        return L + (x - x0) / (x1 - x0) * (W - L - R)

    def py(y: float) -> float:
        return H - B - (y - y0) / (y1 - y0) * (H - T - B)

    body = []
    for i, (_, p) in enumerate(pts.items()):
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in p if y is not None)
        color = PALETTE[i % len(PALETTE)]
        body.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="1.5"/>')
    for v in _ticks(y0, y1, log_y):
        label = _fmt(v)
        if log_y:
            label, v = _fmt(v), math.log10(v)
        body.append(f'<text x="{L - 6}" y="{py(v) + 4:.1f}" font-size="11" text-anchor="end">{label}</text>')
    for v in _ticks(x0, x1, False):
        body.append(
            f'<text x="{px(v):.1f}" y="{H - B + 16}" font-size="11" text-anchor="middle">{_fmt(v)}</text>'
        )
    return _frame(title, xlabel, ylabel, body, list(series))


def bar_chart(
    title: str, xlabel: str, ylabel: str, groups: Sequence[str], series: Mapping[str, Sequence[float]]
) -> str:
    """Grouped bars: one group per label in ``groups``, one bar per series inside each."""
    top = max((v for vals in series.values() for v in vals), default=1.0) or 1.0
    n = max(len(series), 1)
    gw = (W - L - R) / max(len(groups), 1)
    bw = gw * 0.8 / n
    body = []
    for i, (_, vals) in enumerate(series.items()):
        for g, v in enumerate(vals):
            h = v / top * (H - T - B)
            x = L + g * gw + gw * 0.1 + i * bw
            body.append(
                f'<rect x="{x:.1f}" y="{H - B - h:.1f}" width="{bw:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[i % len(PALETTE)]}"><title>{_fmt(v)}</title></rect>'
            )
    for g, label in enumerate(groups):
        x = L + g * gw + gw / 2
        body.append(
            f'<text x="{x:.1f}" y="{H - B + 16}" font-size="11" text-anchor="middle">{escape(label)}</text>'
        )
    for k in range(5):
        v = top * k / 4
        y = H - B - v / top * (H - T - B)
        body.append(f'<text x="{L - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{_fmt(v)}</text>')
    return _frame(title, xlabel, ylabel, body, list(series))
