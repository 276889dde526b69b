"""Chart primitives: server-rendered inline SVG, no scripts, no network.

Every page that draws a chart (the evaluation report, the replay timeline) uses these,
so the charts look alike and are written once:

- :func:`line_chart`: several series over a numeric x axis, with gaps where a value is
  missing, event marks (vertical lines, or glyphs along the top: triangles, diamonds...,
  with a label or a tooltip), shaded bands, an optional horizontal threshold and y = x
  diagonal;
- :func:`histogram`: counts per bin, with a marker at zero;
- :func:`waterfall`: from a starting value through signed steps to the end value (the
  parts of a prediction);
- :func:`bars`: horizontal bars, one group per label and one bar per series (a metric
  per slice, model against baseline);
- :func:`grid`: coloured cells, rows by columns, with a tooltip each (drift per feature
  per week);
- :func:`sparkline`: a few series in a small box, no axes (a trend in a table cell);
- :func:`nice_ticks`, :func:`date_ticks`, :func:`tick_label`: the tick helpers.

The SVG carries no ``xmlns`` (it is meant to sit inside an HTML page), no script and no
external reference. Text is escaped. Nothing here imports from the rest of tuesday.

Example:
    >>> svg = line_chart([0, 1, 2], [Series("rides", [3.0, None, 5.0], "#222")],
    ...                  x_ticks=[(0, "Mon"), (2, "Wed")], title="Rides")
    >>> svg.startswith("<svg") and svg.count("<polyline") == 2
    True
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: default chart size in pixels (width, height)
SIZE = (900, 320)
_ML, _MR, _MT, _MB = 60, 36, 30, 40
_LEGEND_STEP = 170


def _legend_x(names: Sequence[str], start: float) -> list[float]:
    """Where each legend entry starts: after the previous one's key and text (about 6.5
    pixels a character at the charts' font size), at least ``_LEGEND_STEP`` apart."""
    out, x = [], start
    for n in names:
        out.append(x)
        x += max(_LEGEND_STEP, 40 + 6.5 * len(n))
    return out


@dataclass(frozen=True)
class Series:
    """One line of a line chart.

    Attributes:
        name: Shown in the legend.
        values: One value per x; ``None`` or a non-finite value leaves a gap.
        color: The stroke colour.
        dash: An SVG ``stroke-dasharray`` (``"4 3"``), or ``""`` for a solid line.
    """

    name: str
    values: Sequence[Any]
    color: str
    dash: str = ""


@dataclass(frozen=True)
class Mark:
    """A vertical line at ``x`` marking an event (a fold start, an alert, a retrain).

    Attributes:
        x: Where, on the chart's x axis.
        label: Text drawn at the top of the line (``""``: none).
        color: The stroke colour.
        dash: An SVG ``stroke-dasharray``, or ``""`` for a solid line.
        note: A tooltip shown when the pointer is on the line (``""``: none).
        shape: ``line`` (a vertical line) or a glyph along the top (:data:`SHAPES`).
        row: Which row of glyphs (0: the top one), so kinds on the same day do not
            hide each other.
    """

    x: float
    label: str = ""
    color: str = "#aaa"
    dash: str = "1 3"
    note: str = ""
    shape: str = "line"
    row: int = 0


#: the glyphs a :class:`Mark` can be drawn as instead of a vertical line: a small shape at
#: the top of the plot, so many events do not hide the series
SHAPES = ("line", "triangle", "diamond", "circle", "square", "cross")


@dataclass(frozen=True)
class Band:
    """A shaded span of the x axis from ``x0`` to ``x1`` (a run of alert days).

    Attributes:
        x0: Where it starts, on the chart's x axis.
        x1: Where it ends.
        color: The fill colour (drawn translucent, behind the series).
        note: A tooltip (``""``: none).
    """

    x0: float
    x1: float
    color: str = "#f5cba7"
    note: str = ""


def line_chart(x: Sequence[float], series: Sequence[Series], *,
               x_ticks: Sequence[tuple[float, str]], marks: Sequence[Mark] = (),
               bands: Sequence[Band] = (),
               y_label: str = "", title: str, x_label: str = "", markers: bool = False,
               x_range: tuple[float, float] | None = None,
               y_range: tuple[float, float] | None = None, diagonal: bool = False,
               threshold: float | None = None, size: tuple[int, int] = SIZE) -> str:
    """An inline SVG line chart of ``series`` over ``x``, legend at the top.

    Args:
        x: The x value of each point (shared by every series).
        series: The lines.
        x_ticks: (x, label) of each tick on the x axis.
        marks: Event marks: vertical lines or glyphs along the top.
        bands: Shaded spans of the x axis, drawn behind everything else.
        y_label: The y axis title.
        title: The chart's accessible title.
        x_label: The x axis title.
        markers: Draw a dot on each point.
        x_range: The x axis span (default: the span of ``x``).
        y_range: The y axis span, widened to round ticks (default: the span of the
            values). With a range, the chart is drawn even when no value is known.
        diagonal: Draw the line y = x ("perfectly calibrated").
        threshold: Draw a dashed horizontal line at this y.
        size: (width, height) in pixels.

    Returns:
        The ``<svg>`` element, or ``""`` when there is nothing to draw.
    """
    values = [float(v) for s in series for v in s.values if finite(v)]
    if not x or (not values and y_range is None):
        return ""
    w, h = size
    ylo, yhi = y_range or (min(values), max(values))
    yt = nice_ticks(ylo, yhi)
    ylo, yhi = min(ylo, yt[0]), max(yhi, yt[-1])
    xlo, xhi = x_range or (min(x), max(x))
    if xhi <= xlo:
        xlo, xhi = xlo - 1, xhi + 1
    if yhi <= ylo:
        ylo, yhi = ylo - 1, yhi + 1

    def sx(v: float) -> float:
        return _ML + (v - xlo) / (xhi - xlo) * (w - _ML - _MR)

    def sy(v: float) -> float:
        return h - _MB - (v - ylo) / (yhi - ylo) * (h - _MT - _MB)

    out = [_open(title, w, h),
           f'<rect x="{_ML}" y="{_MT}" width="{w - _ML - _MR}" '
           f'height="{h - _MT - _MB}" fill="none" stroke="#ccc"/>']
    for band in bands:
        a, b = max(band.x0, xlo), min(band.x1, xhi)
        if a < b:
            out.append(_band(band, sx(a), sx(b), h))
    out.extend(_y_grid(yt, sy, w))
    for t, label in x_ticks:
        if xlo <= t <= xhi:
            out.append(_x_tick(sx(t), label, h))
    for m in marks:
        if xlo <= m.x <= xhi:
            out.append(_mark(m, sx(m.x), h))
    if y_label:
        out.append(_y_title(y_label, h))
    if x_label:
        out.append(_x_title(x_label, w, h))
    if diagonal:
        a, b = max(xlo, ylo), min(xhi, yhi)
        out.append(f'<line x1="{sx(a):.1f}" y1="{sy(a):.1f}" x2="{sx(b):.1f}" '
                   f'y2="{sy(b):.1f}" stroke="#999" stroke-dasharray="4 3"/>'
                   f'<line x1="{w - _MR - 200}" x2="{w - _MR - 176}" y1="{_MT - 12}" '
                   f'y2="{_MT - 12}" stroke="#999" stroke-dasharray="4 3"/>'
                   f'<text x="{w - _MR - 172}" y="{_MT - 8}">perfectly calibrated</text>')
    if threshold is not None:
        out.append(f'<line x1="{_ML}" x2="{w - _MR}" y1="{sy(threshold):.1f}" '
                   f'y2="{sy(threshold):.1f}" stroke="#c0392b" stroke-dasharray="4 3"/>')
    legend = _legend_x([s.name for s in series], _ML + 10)
    for i, s in enumerate(series):
        out.extend(_series(s, legend[i], x, sx, sy, markers))
    out.append("</svg>")
    return "\n".join(out)


def histogram(edges: Sequence[float], counts: Sequence[int], *, title: str,
              x_label: str = "predicted - actual", size: tuple[int, int] = SIZE) -> str:
    """An inline SVG histogram (one bar per bin, with its range and count as a tooltip)
    with a dashed marker at zero when zero is in range.

    Returns:
        The ``<svg>`` element, or ``""`` when there are no bins.
    """
    if not counts:
        return ""
    w, h = size
    lo, hi = float(edges[0]), float(edges[-1])
    top = float(max(max(counts), 1))
    yt = nice_ticks(0.0, top)
    top = max(top, yt[-1])

    def sx(v: float) -> float:
        return _ML + (v - lo) / (hi - lo) * (w - _ML - _MR)

    def sy(v: float) -> float:
        return h - _MB - v / top * (h - _MT - _MB)

    out = [_open(title, w, h)]
    out.extend(_y_grid(yt, sy, w))
    for a, b, c in zip(edges[:-1], edges[1:], counts, strict=True):
        out.append(f'<rect x="{sx(a):.1f}" y="{sy(c):.1f}" width="{max(sx(b) - sx(a) - 1, 1):.1f}" '
                   f'height="{sy(0) - sy(c):.1f}" fill="#4c78a8"><title>{_number(a)} to '
                   f"{_number(b)}: {int(c)} rows</title></rect>")
    for t in nice_ticks(lo, hi):
        if lo <= t <= hi:
            out.append(_x_tick(sx(t), tick_label(t), h))
    if lo < 0 < hi:
        out.append(f'<line x1="{sx(0):.1f}" x2="{sx(0):.1f}" y1="{_MT}" y2="{h - _MB}" '
                   f'stroke="#d62728" stroke-dasharray="4 3"/><text x="{sx(0) + 3:.1f}" '
                   f'y="{_MT + 10}" fill="#d62728">0</text>')
    out.append(f'<line x1="{_ML}" x2="{w - _MR}" y1="{h - _MB}" y2="{h - _MB}" '
               f'stroke="#555"/>')
    out.append(_x_title(x_label, w, h))
    out.append(_y_title("rows", h))
    out.append("</svg>")
    return "\n".join(out)


#: the colours of a step that raises (first) and holds back (second) in a waterfall
RAISE, LOWER = "#2b7bba", "#e07b24"
_LABEL_W, _ROW_H = 380, 24


def waterfall(start: tuple[str, float], steps: Sequence[tuple[str, float]],
              end: tuple[str, float], *, title: str, value_text: Any = None,
              width: int = SIZE[0], words: tuple[str, str] = ("raises", "holds back")) -> str:
    """An inline SVG waterfall: a row for ``start``, one per signed step (a bar from the
    running total to the next), a row for ``end``; labels on the left, the amounts at the
    bars. ``value_text`` formats a number (default: up to four significant digits).

    Example:
        >>> svg = waterfall(("expected", 10.0), [("rain", -2.0), ("game", 3.5)],
        ...                 ("forecast", 11.5), title="Why 11.5")
        >>> svg.count("<rect") == 1 + 2 + 2 and "+3.5" in svg and "&minus;2" in svg
        True
    """
    fmt = value_text or _number
    totals = [float(start[1])]
    for _, step in steps:
        totals.append(totals[-1] + float(step))
    values = [*totals, float(end[1])]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.05 or max(abs(hi), 1.0) * 0.05
    ticks = nice_ticks(lo - pad, hi + pad)
    lo, hi = min(lo - pad, ticks[0]), max(hi + pad, ticks[-1])
    n = len(steps) + 2
    h = _MT + 10 + n * _ROW_H + _MB
    x0, x1 = _LABEL_W, width - 70

    def sx(v: float) -> float:
        return x0 + (v - lo) / (hi - lo) * (x1 - x0)

    out = [_open(title, width, h),
           f'<rect x="{x0}" y="{_MT}" width="{x1 - x0}" height="{h - _MT - _MB}" '
           f'fill="none" stroke="#ccc"/>']
    for t in ticks:
        if lo <= t <= hi:
            out.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{_MT}" '
                       f'y2="{h - _MB}" stroke="#eee"/>' + _x_tick(sx(t), tick_label(t), h))
    for (label, color), lx in zip(((words[0], RAISE), (words[1], LOWER)),
                                  _legend_x(words, x0), strict=True):
        out.append(f'<rect x="{lx}" y="{_MT - 20}" width="14" height="10" fill="{color}"/>'
                   f'<text x="{lx + 18}" y="{_MT - 11}">{_esc(label)}</text>')
    rows: list[tuple[str, float | None, float]] = [
        (start[0], None, totals[0]), *((lbl, float(d), totals[k]) for k, (lbl, d)
                                       in enumerate(steps)), (end[0], None, values[-1])]
    for i, (label, d, at) in enumerate(rows):
        y = _MT + 5 + i * _ROW_H
        mid = y + _ROW_H / 2
        short = label if len(label) <= 60 else label[:58] + "..."
        out.append(f'<text x="{x0 - 8}" y="{mid + 4:.1f}" text-anchor="end">'
                   f"<title>{_esc(label)}</title>{_esc(short)}</text>")
        if d is None:  # the start or the end: a mark at the value
            out.append(f'<path d="M{sx(at):.1f},{y + 3:.1f} l7,9 l-7,9 l-7,-9 z" '
                       f'fill="#333"/><text x="{sx(at) + 10:.1f}" y="{mid + 4:.1f}" '
                       f'font-weight="bold">{_esc(fmt(at))}</text>')
            continue
        a, b = sorted((sx(at), sx(at + d)))
        color = RAISE if d >= 0 else LOWER
        sign = "+" if d >= 0 else "&minus;"
        # the amount beside the bar, on the side it moves to (left of a bar that
        # lowers, when there is room), away from the next row's mark
        left = d < 0 and a - x0 > 60
        tx, anchor = (a - 4, "end") if left else (b + 4, "start")
        out.append(f'<rect x="{a:.1f}" y="{y + 4:.1f}" width="{max(b - a, 1.5):.1f}" '
                   f'height="{_ROW_H - 8}" fill="{color}"><title>{_esc(label)}: {sign}'
                   f"{_esc(fmt(abs(d)))}</title></rect>"
                   f'<text x="{tx:.1f}" y="{mid + 4:.1f}" text-anchor="{anchor}" '
                   f'fill="#333">{sign}{_esc(fmt(abs(d)))}</text>')
        nxt_y = y + _ROW_H
        out.append(f'<line x1="{sx(at + d):.1f}" x2="{sx(at + d):.1f}" y1="{y + 4:.1f}" '
                   f'y2="{nxt_y + 4:.1f}" stroke="#999" stroke-dasharray="2 2"/>')
    out.append("</svg>")
    return "\n".join(out)


def bars(labels: Sequence[str], series: Sequence[Series], *, title: str, x_label: str = "",
         width: int = SIZE[0], value_text: Any = None) -> str:
    """An inline SVG of horizontal bars: one group per label, one bar per series (its
    ``values`` aligned with ``labels``; a missing value draws no bar), the value at the
    end of each bar, the legend on top.

    Example:
        >>> svg = bars(["Mon", "Tue"], [Series("model", [0.1, 0.2], "#1f77b4"),
        ...                             Series("naive", [0.15, None], "#d62728")],
        ...            title="WAPE per day")
        >>> svg.count("<rect") == 3 + 2  # three bars and two legend keys
        True
    """
    if not labels or not series:
        return ""
    fmt = value_text or _number
    vals = [float(v) for s in series for v in s.values if finite(v)]
    if not vals:
        return ""
    lo, hi = min(0.0, min(vals)), max(0.0, max(vals))
    ticks = nice_ticks(lo, hi if hi > lo else lo + 1)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    bar_h = 12
    group = bar_h * len(series) + 8
    label_w = min(_LABEL_W, 40 + 7 * max(len(str(lbl)) for lbl in labels))
    h = _MT + 10 + group * len(labels) + _MB
    x0, x1 = label_w, width - 70

    def sx(v: float) -> float:
        return x0 + (v - lo) / (hi - lo) * (x1 - x0)

    out = [_open(title, width, h)]
    for t in ticks:
        out.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{_MT}" y2="{h - _MB}" '
                   f'stroke="#eee"/>' + _x_tick(sx(t), tick_label(t), h))
    for s, lx in zip(series, _legend_x([s.name for s in series], x0), strict=True):
        out.append(f'<rect x="{lx}" y="{_MT - 20}" width="14" height="10" fill="{s.color}"/>'
                   f'<text x="{lx + 18}" y="{_MT - 11}">{_esc(s.name)}</text>')
    for g, label in enumerate(labels):
        y = _MT + 6 + g * group
        out.append(f'<text x="{x0 - 8}" y="{y + group / 2:.1f}" text-anchor="end">'
                   f"{_esc(label)}</text>")
        for i, s in enumerate(series):
            v = s.values[g]
            if not finite(v):
                continue
            a, b = sorted((sx(0.0), sx(float(v))))
            yy = y + i * bar_h
            out.append(f'<rect x="{a:.1f}" y="{yy:.1f}" width="{max(b - a, 1.0):.1f}" '
                       f'height="{bar_h - 2}" fill="{s.color}"><title>{_esc(label)}, '
                       f"{_esc(s.name)}: {_esc(fmt(float(v)))}</title></rect>"
                       f'<text x="{b + 4:.1f}" y="{yy + bar_h - 3:.1f}" fill="#333">'
                       f"{_esc(fmt(float(v)))}</text>")
    out.append(f'<line x1="{sx(0.0):.1f}" x2="{sx(0.0):.1f}" y1="{_MT}" y2="{h - _MB}" '
               f'stroke="#555"/>')
    if x_label:
        out.append(_x_title(x_label, width, h))
    out.append("</svg>")
    return "\n".join(out)


def grid(row_labels: Sequence[str], col_labels: Sequence[str],
         colors: Sequence[Sequence[str]], notes: Sequence[Sequence[str]], *, title: str,
         legend: Sequence[tuple[str, str]] = (), width: int = SIZE[0]) -> str:
    """An inline SVG grid of coloured cells, ``colors[row][col]``, each with the tooltip
    ``notes[row][col]``; row labels on the left, column labels below (thinned to fit),
    ``legend`` as (colour, text) on top.

    Example:
        >>> svg = grid(["temp"], ["W1", "W2"], [["#eee", "#c0392b"]],
        ...            [["no drift", "drifted"]], title="Drift")
        >>> svg.count("<rect") == 2
        True
    """
    if not row_labels or not col_labels:
        return ""
    label_w = min(_LABEL_W, 40 + 7 * max(len(str(lbl)) for lbl in row_labels))
    cell_h = 18
    cw = (width - label_w - 20) / len(col_labels)
    h = _MT + 6 + cell_h * len(row_labels) + _MB
    out = [_open(title, width, h)]
    for (color, text), lx in zip(legend, _legend_x([t for _, t in legend], label_w),
                                 strict=True):
        out.append(f'<rect x="{lx}" y="{_MT - 20}" width="14" height="10" fill="{color}" '
                   f'stroke="#999"/><text x="{lx + 18}" y="{_MT - 11}">{_esc(text)}</text>')
    for r, label in enumerate(row_labels):
        y = _MT + 4 + r * cell_h
        out.append(f'<text x="{label_w - 8}" y="{y + cell_h - 5}" text-anchor="end">'
                   f"{_esc(label)}</text>")
        for c in range(len(col_labels)):
            out.append(f'<rect x="{label_w + c * cw:.1f}" y="{y}" width="{max(cw - 2, 1):.1f}" '
                       f'height="{cell_h - 2}" fill="{colors[r][c]}">'
                       f"<title>{_esc(notes[r][c])}</title></rect>")
    every = max(1, math.ceil(len(col_labels) * 80 / (width - label_w)))
    for c in range(0, len(col_labels), every):
        out.append(f'<text x="{label_w + (c + 0.5) * cw:.1f}" y="{h - _MB + 16}" '
                   f'text-anchor="middle">{_esc(col_labels[c])}</text>')
    out.append("</svg>")
    return "\n".join(out)


def sparkline(series: Sequence[Series], *, title: str, size: tuple[int, int] = (180, 40)
              ) -> str:
    """A small inline SVG of a few series over their positions, no axes; the last
    point of each series is dotted. ``""`` with fewer than two points.

    Example:
        >>> sparkline([Series("model", [0.2, 0.1, 0.15], "#1f77b4")], title="WAPE")[:4]
        '<svg'
    """
    n = max((len(s.values) for s in series), default=0)
    vals = [float(v) for s in series for v in s.values if finite(v)]
    if n < 2 or not vals:
        return ""
    w, h = size
    lo, hi = min(vals), max(vals)
    if hi <= lo:
        lo, hi = lo - 1, hi + 1

    def sx(i: float) -> float:
        return 3 + i / (n - 1) * (w - 6)

    def sy(v: float) -> float:
        return h - 3 - (v - lo) / (hi - lo) * (h - 6)

    out = [_open(title, w, h)]
    for s in series:
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        for seg in _segments(list(range(len(s.values))), s.values):
            pts = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in seg)
            out.append(f'<polyline points="{pts}" fill="none" stroke="{s.color}" '
                       f'stroke-width="1.6"{dash}/>')
        last = [(i, float(v)) for i, v in enumerate(s.values) if finite(v)]
        if last:
            i, v = last[-1]
            out.append(f'<circle cx="{sx(i):.1f}" cy="{sy(v):.1f}" r="2.5" fill="{s.color}"/>')
    out.append("</svg>")
    return "\n".join(out)


# -------------------------------------------------------------------------- ticks


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten.

    Example:
        >>> nice_ticks(0.0, 1.0)
        [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks: list[float] = []
    t = first
    while t < hi + step * 0.5 and len(ticks) < 50:
        ticks.append(round(t, 12))
        t += step
    return ticks


def date_ticks(days: pd.Series) -> list[tuple[float, str]]:
    """(days since the first day, label) ticks for a sorted series of days: weekly
    dates up to two months, months up to two years, else years; at most about 12.

    Example:
        >>> date_ticks(pd.Series(pd.to_datetime(["2015-01-05", "2015-01-20"])))
        [(0.0, '2015-01-05'), (7.0, '2015-01-12'), (14.0, '2015-01-19')]
    """
    first, last = days.iloc[0], days.iloc[-1]
    span = (last - first).days
    if span <= 62:
        freq, fmt = "7D", "%Y-%m-%d"
    elif span <= 2 * 366:
        freq, fmt = "MS", "%b %Y"
    else:
        freq, fmt = "YS", "%Y"
    cands = list(pd.date_range(first, last, freq=freq))
    every = max(1, math.ceil(len(cands) / 12))
    return [(float((t - first) / pd.Timedelta(days=1)), t.strftime(fmt))
            for t in cands[::every]]


def tick_label(v: float) -> str:
    """A tick value as text: up to six significant digits."""
    return f"{v:.6g}"


def finite(v: Any) -> bool:
    """Whether ``v`` is a number that can be plotted: real, finite, not a bool."""
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(
        v, bool) and math.isfinite(float(v))


# ------------------------------------------------------------------------ drawing


def _open(title: str, w: int, h: int) -> str:
    return (f'<svg viewBox="0 0 {w} {h}" '
            f'width="{w}" height="{h}" role="img" aria-label="{_esc(title)}">\n'
            f"<title>{_esc(title)}</title>")


def _y_grid(ticks: Sequence[float], sy: Any, w: int) -> list[str]:
    return [f'<line x1="{_ML}" x2="{w - _MR}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" '
            f'stroke="#eee"/><text x="{_ML - 4}" y="{sy(t) + 4:.1f}" '
            f'text-anchor="end">{_esc(tick_label(t))}</text>' for t in ticks]


def _x_tick(px: float, label: str, h: int) -> str:
    return (f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{h - _MB}" '
            f'y2="{h - _MB + 4}" stroke="#555"/><text x="{px:.1f}" '
            f'y="{h - _MB + 16}" text-anchor="middle">{_esc(label)}</text>')


def _band(b: Band, x0: float, x1: float, h: int) -> str:
    tip = f"<title>{_esc(b.note)}</title>" if b.note else ""
    return (f'<rect x="{x0:.1f}" y="{_MT}" width="{max(x1 - x0, 1.0):.1f}" '
            f'height="{h - _MT - _MB}" fill="{b.color}" fill-opacity="0.35">{tip}</rect>')


def _glyph(m: Mark, px: float) -> str:
    """A small shape at the top of the plot, with a hairline down to the x axis."""
    y, r = _MT + 7 + 12 * m.row, 5
    pts = {"triangle": [(px, y - r), (px + r, y + r), (px - r, y + r)],
           "diamond": [(px, y - r), (px + r, y), (px, y + r), (px - r, y)],
           "square": [(px - r, y - r), (px + r, y - r), (px + r, y + r), (px - r, y + r)]}
    tip = f"<title>{_esc(m.note)}</title>" if m.note else ""
    if m.shape in pts:
        poly = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts[m.shape])
        return f'<polygon points="{poly}" fill="{m.color}" stroke="#fff">{tip}</polygon>'
    if m.shape == "cross":
        return (f'<path d="M{px - r:.1f},{y - r} L{px + r:.1f},{y + r} M{px - r:.1f},{y + r} '
                f'L{px + r:.1f},{y - r}" stroke="{m.color}" stroke-width="2.5">{tip}</path>')
    return f'<circle cx="{px:.1f}" cy="{y}" r="{r - 1}" fill="{m.color}">{tip}</circle>'


def _mark(m: Mark, px: float, h: int) -> str:
    if m.shape != "line":
        return _glyph(m, px) + (f'<text x="{px + 7:.1f}" y="{_MT + 11 + 12 * m.row}" '
                                f'fill="#555">'
                                f"{_esc(m.label)}</text>" if m.label else "")
    dash = f' stroke-dasharray="{m.dash}"' if m.dash else ""
    line = f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{_MT}" y2="{h - _MB}" stroke="{m.color}"{dash}'
    line += f"><title>{_esc(m.note)}</title></line>" if m.note else "/>"
    if m.label:
        line += (f'<text x="{px + 2:.1f}" y="{_MT + 10}" fill="#888">'
                 f"{_esc(m.label)}</text>")
    return line


def _x_title(text: str, w: int, h: int) -> str:
    return (f'<text x="{(w + _ML) / 2:.0f}" y="{h - 6}" text-anchor="middle">'
            f"{_esc(text)}</text>")


def _y_title(text: str, h: int) -> str:
    return (f'<text x="14" y="{(h - _MB + _MT) / 2:.0f}" text-anchor="middle" '
            f'transform="rotate(-90 14 {(h - _MB + _MT) / 2:.0f})">{_esc(text)}</text>')


def _series(s: Series, lx: float, x: Sequence[float], sx: Any, sy: Any,
            markers: bool) -> list[str]:
    """The polylines of one series (one per run of known points) and its legend entry."""
    out = []
    dash_attr = f' stroke-dasharray="{s.dash}"' if s.dash else ""
    for seg in _segments(x, s.values):
        pts = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in seg)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{s.color}" '
                   f'stroke-width="1.4"{dash_attr}/>')
        if markers:
            out.extend(f'<circle cx="{sx(a):.1f}" cy="{sy(b):.1f}" r="3" '
                       f'fill="{s.color}"/>' for a, b in seg)
    out.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{_MT - 12}" y2="{_MT - 12}" '
               f'stroke="{s.color}" stroke-width="2"{dash_attr}/><text x="{lx + 28}" '
               f'y="{_MT - 8}">{_esc(s.name)}</text>')
    return out


def _segments(x: Sequence[float], vals: Sequence[Any]) -> list[list[tuple[float, float]]]:
    """Runs of consecutive known points (a missing value breaks the line)."""
    out: list[list[tuple[float, float]]] = []
    cur: list[tuple[float, float]] = []
    for a, b in zip(x, vals, strict=True):
        if finite(b):
            cur.append((float(a), float(b)))
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def _number(v: float) -> str:
    if isinstance(v, int | np.integer) and not isinstance(v, bool):
        return f"{int(v):,}"
    return f"{float(v):.4g}"


def _esc(v: Any) -> str:
    return html.escape("" if v is None else str(v))
