"""Charts as inline SVG drawn on the server: no script, no library, no CDN. Pure functions from numbers to markup.

Every chart is an ``<svg role="img">`` whose ``<title>`` and ``<desc>`` name what it shows (``aria-labelledby``
points at both), so a screen reader says it; pages put the numbers in a table next to it as well. Every text
that goes into a chart (titles, names, labels) is escaped here, so a user name cannot add markup.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 22, 30
"""Room around the plot for the value labels (left), the legend (top) and the time labels (bottom)."""
COLOURS = ("#2459d6", "#c2410c", "#15803d", "#7c3aed")
INK, MUTED, LINE = "#1d2430", "#5b6474", "#d9dee7"
NO_DATA = "No data in this period."
_IDENT = re.compile(r"^[a-z][a-z0-9-]{0,40}$")


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a line chart: (x, y) points in x order; a y of None is a gap (nothing measured)."""

    name: str
    points: Sequence[tuple[float, float | None]]


@dataclass(frozen=True, slots=True)
class Box:
    """The plot area inside the chart, in SVG units."""

    left: float
    top: float
    right: float
    bottom: float


def plot_box(width: int = WIDTH, height: int = HEIGHT, left: float = LEFT) -> Box:
    return Box(left, TOP, width - RIGHT, height - BOTTOM)


def scale(value: float, low: float, high: float, out_low: float, out_high: float) -> float:
    """``value`` from [low, high] onto [out_low, out_high], clamped to that range; the middle when low == high."""
    if high == low:
        return (out_low + out_high) / 2
    fraction = min(max((value - low) / (high - low), 0.0), 1.0)
    return out_low + fraction * (out_high - out_low)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above ``value`` (1 for nothing): an axis top."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-9):
            return float(step * power)
    return float(10 * power)


def number(value: float) -> str:
    """A short label: 12, 2.5, 1.2k, 3.4M."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}" if value != int(value) else str(int(value))


def _xy(x: float, y: float) -> str:
    return f"{x:.1f},{y:.1f}"


def _frame(ident: str, title: str, desc: str, height: int, body: list[str]) -> Markup:
    if not _IDENT.match(ident):
        raise ValueError(f"chart id {ident!r}: use lower-case letters, digits and -")
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{ident}" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-labelledby="{ident}-title {ident}-desc" font-family="system-ui, sans-serif" font-size="11">'
        f'<title id="{ident}-title">{escape(title)}</title><desc id="{ident}-desc">{escape(desc)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")


def _text(x: float, y: float, content: str, anchor: str = "start", fill: str = MUTED, extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}"{extra}>{escape(content)}</text>'


def _no_data(box: Box) -> str:
    return _text((box.left + box.right) / 2, (box.top + box.bottom) / 2, NO_DATA, "middle", extra=' class="no-data"')


def _value_axis(box: Box, top: float, unit: str) -> list[str]:
    """Grid lines at 0, half and the top of the value axis, with their labels."""
    parts = []
    for value in (0.0, top / 2, top):
        y = scale(value, 0, top, box.bottom, box.top)
        parts.append(f'<line x1="{box.left}" x2="{box.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{LINE}"/>')
        parts.append(_text(box.left - 4, y + 4, f"{number(value)}{unit}", "end"))
    return parts


def _time_labels(box: Box, x_range: tuple[float, float], ticks: Sequence[tuple[float, str]]) -> list[str]:
    return [
        _text(scale(x, *x_range, box.left, box.right), box.bottom + 16, label, "middle", extra=' class="tick"')
        for x, label in ticks
        if x_range[0] <= x <= x_range[1]
    ]


def _legend(box: Box, names: Sequence[str]) -> list[str]:
    parts, x = [], box.left
    for index, name in enumerate(names):
        colour = COLOURS[index % len(COLOURS)]
        parts.append(f'<rect x="{x:.1f}" y="4" width="10" height="10" fill="{colour}"/>')
        parts.append(_text(x + 14, 13, name, fill=INK))
        x += 24 + 7 * len(name)
    return parts


def line_chart(
    ident: str,
    title: str,
    desc: str,
    series: Sequence[Series],
    x_range: tuple[float, float],
    x_ticks: Sequence[tuple[float, str]] = (),
    unit: str = "",
    y_top: float | None = None,
) -> Markup:
    """Lines over time (x: seconds since the epoch, say), with a legend when there is more than one line.
    Points outside ``x_range`` are left out; a gap in a series breaks its line."""
    box = plot_box()
    values = [y for line in series for x, y in line.points if y is not None and x_range[0] <= x <= x_range[1]]
    body = _legend(box, [line.name for line in series]) if len(series) > 1 else []
    if not values:
        return _frame(ident, title, desc, HEIGHT, [*body, _no_data(box)])
    top = y_top if y_top is not None else nice_ceiling(max(values))
    body += _value_axis(box, top, unit) + _time_labels(box, x_range, x_ticks)
    for index, line in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        runs: list[list[tuple[float, float]]] = []
        run: list[tuple[float, float]] = []
        for x, y in line.points:
            if y is None or not x_range[0] <= x <= x_range[1]:
                runs.append(run)
                run = []
                continue
            run.append((scale(x, *x_range, box.left, box.right), scale(y, 0, top, box.bottom, box.top)))
        runs.append(run)
        for points in (run for run in runs if run):
            if len(points) == 1:  # a lone point: a dot, a line needs two
                body.append(f'<circle cx="{points[0][0]:.1f}" cy="{points[0][1]:.1f}" r="2.5" fill="{colour}"/>')
            else:
                joined = " ".join(_xy(x, y) for x, y in points)
                body.append(f'<polyline points="{joined}" fill="none" stroke="{colour}" stroke-width="2"/>')
    return _frame(ident, title, desc, HEIGHT, body)


def bar_chart(
    ident: str,
    title: str,
    desc: str,
    bars: Sequence[tuple[str, float]],
    unit: str = "",
    label_every: int = 1,
) -> Markup:
    """Upright bars side by side (one per period, say), labelled below; every ``label_every``-th label shows."""
    box = plot_box()
    if not bars or not any(value > 0 for _, value in bars):
        return _frame(ident, title, desc, HEIGHT, [_no_data(box)])
    top = nice_ceiling(max(value for _, value in bars))
    body = _value_axis(box, top, unit)
    slot = (box.right - box.left) / len(bars)
    for index, (label, value) in enumerate(bars):
        x, y = box.left + index * slot, scale(value, 0, top, box.bottom, box.top)
        body.append(
            f'<rect x="{x + slot * 0.15:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{box.bottom - y:.1f}" '
            f'fill="{COLOURS[1]}"><title>{escape(label)}: {escape(number(value))}{escape(unit)}</title></rect>'
        )
        if index % max(label_every, 1) == 0:
            body.append(_text(x + slot / 2, box.bottom + 16, label, "middle", extra=' class="tick"'))
    return _frame(ident, title, desc, HEIGHT, body)


def hbar_chart(
    ident: str,
    title: str,
    desc: str,
    bars: Sequence[tuple[str, float, str]],
    top: float | None = None,
) -> Markup:
    """Bars lying down, one row each: (name, value, value in words); longest first is the caller's order."""
    row, left = 24, 170
    height = TOP + max(len(bars), 1) * row + 8
    box = Box(left, TOP, WIDTH - 130, height - 8)
    if not bars:
        return _frame(ident, title, desc, height, [_no_data(box)])
    top = top if top is not None else nice_ceiling(max(value for _, value, _ in bars))
    body = []
    for index, (name, value, words) in enumerate(bars):
        y = box.top + index * row
        end = scale(value, 0, top, box.left, box.right)
        shown = name if len(name) <= 26 else name[:25] + "…"
        body.append(_text(box.left - 6, y + 15, shown, "end", fill=INK, extra=' class="name"'))
        body.append(
            f'<rect x="{box.left}" y="{y + 4:.1f}" width="{max(end - box.left, 1):.1f}" height="15" '
            f'fill="{COLOURS[0]}"/>'
        )
        body.append(_text(end + 4, y + 15, words, extra=' class="value"'))
    return _frame(ident, title, desc, height, body)
