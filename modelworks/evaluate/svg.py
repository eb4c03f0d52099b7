"""The report's charts as inline SVG, written directly: lines and points on axes, and a heat map.

A chart is a few kilobytes of SVG made in about a millisecond (drawing the same with matplotlib
took seconds per report, plus its import), and its text stays text, so the browser's fonts draw
any script (Chinese class names included). `chart` draws one set of axes with any number of
`Series`; `heatmap` a labelled matrix (the confusion matrix); `bars` horizontal bars (the tuning
report's parameter importance); `figure` wraps charts in the ``<figure role="img">`` element the
page shows.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

# matplotlib's "tab10" colours, so that the reports look as they did
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
BLUE, ORANGE, GREY = COLORS[0], COLORS[1], "#808080"
FONT = 'font-family="sans-serif" font-size="11"'
MARGIN = {"left": 56, "right": 14, "top": 26, "bottom": 40}


@dataclass
class Series:
    """One line (or set of points) of a chart; points whose x or y is not finite are left out."""

    xs: Sequence[float]
    ys: Sequence[float]
    label: str | None = None
    color: str = BLUE
    line: bool = True
    markers: bool = False
    opacity: float = 1.0
    dashed: bool = False
    width: float = 1.5

    def points(self) -> list[tuple[float, float]]:
        return [(float(x), float(y)) for x, y in zip(self.xs, self.ys, strict=False) if _finite(x) and _finite(y)]


def figure(charts: str | Sequence[str], alt: str) -> str:
    """One or more charts as one figure of the page, described by `alt` for screen readers."""
    body = charts if isinstance(charts, str) else "".join(charts)
    return f'<figure role="img" aria-label="{_esc(alt)}">{body}</figure>'


def chart(
    series: Sequence[Series],
    *,
    title: str,
    xlabel: str = "",
    ylabel: str = "",
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    integer_x: bool = False,
    legend: str = "upper right",
    size: tuple[int, int] = (460, 320),
) -> str:
    """Axes with ticks, labels and a legend, and each of `series` drawn on them (first below)."""
    width, height = size
    drawn = [(s, s.points()) for s in series]
    xs = [x for _, pts in drawn for x, _ in pts]
    ys = [y for _, pts in drawn for _, y in pts]
    x0, x1 = xlim or _span(xs)
    y0, y1 = ylim or _span(ys, pad=0.05)
    left, top = MARGIN["left"], MARGIN["top"]
    pw, ph = width - left - MARGIN["right"], height - top - MARGIN["bottom"]

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + ph - (y - y0) / (y1 - y0) * ph

    parts = [_open(width, height), _title(left + pw / 2, 16, title)]
    frame = f'x="{left}" y="{top}" width="{pw}" height="{ph}"'
    parts.append(f'<rect {frame} fill="none" stroke="#333" stroke-width="0.8"/>')
    for t in _ticks(x0, x1, integer_x):
        parts.append(f'<line x1="{px(t):.1f}" y1="{top + ph}" x2="{px(t):.1f}" y2="{top + ph + 4}" stroke="#333"/>')
        parts.append(f'<text x="{px(t):.1f}" y="{top + ph + 15}" text-anchor="middle">{_tick(t)}</text>')
    for t in _ticks(y0, y1):
        parts.append(f'<line x1="{left - 4}" y1="{py(t):.1f}" x2="{left}" y2="{py(t):.1f}" stroke="#333"/>')
        parts.append(f'<line x1="{left}" y1="{py(t):.1f}" x2="{left + pw}" y2="{py(t):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{_tick(t)}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle">{_esc(xlabel)}</text>')
    parts.append(
        f'<text transform="translate(13 {top + ph / 2}) rotate(-90)" text-anchor="middle">{_esc(ylabel)}</text>'
    )
    for s, pts in drawn:
        coords = [(px(x), py(y)) for x, y in pts]
        if s.line and len(coords) > 1:
            dash = ' stroke-dasharray="5 3"' if s.dashed else ""
            text = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(
                f'<polyline points="{text}" fill="none" stroke="{s.color}" stroke-width="{s.width}" '
                f'stroke-opacity="{s.opacity}"{dash}/>'
            )
        if s.markers:
            dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5"/>' for x, y in coords)
            parts.append(f'<g fill="{s.color}" fill-opacity="{s.opacity}">{dots}</g>')
    parts.append(_legend([s for s in series if s.label], legend, left, top, pw, ph))
    return "".join(parts) + "</svg>"


def heatmap(
    matrix: Sequence[Sequence[float]], names: Sequence[str], *, title: str, xlabel: str, ylabel: str, annotate: bool
) -> str:
    """A k x k matrix in shades of blue, rows and columns named by `names`, counts written in if `annotate`."""
    k = len(names)
    cell = max(8.0, min(110.0, 480.0 / max(k, 1)))  # 2 classes: 220 px a side; 60: 8 px a cell
    label = min(max((_text_width(n) for n in names), default=0.0), 160.0) + 8
    left, top = 30 + label, 30
    side = cell * k
    width, height = int(left + side + 70), int(top + side + label + 30)
    high = max((v for row in matrix for v in row), default=0) or 1
    parts = [_open(width, height), _title(left + side / 2, 18, title)]
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            share = value / high
            x, y = left + j * cell, top + i * cell
            box = f'x="{x:.1f}" y="{y:.1f}" width="{cell:.1f}" height="{cell:.1f}"'
            parts.append(f'<rect {box} fill="{_blue(share)}"/>')
            if annotate:
                color = "white" if share > 0.5 else "black"
                parts.append(
                    f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" text-anchor="middle" '
                    f'fill="{color}">{_esc(_tick(value))}</text>'
                )
    slanted = k > 4
    for i, name in enumerate(names):
        c = left + (i + 0.5) * cell
        row = top + (i + 0.5) * cell + 4
        parts.append(f'<text x="{left - 5}" y="{row:.1f}" text-anchor="end">{_esc(name)}</text>')
        if slanted:
            turn = f"translate({c:.1f} {top + side + 12}) rotate(-45)"
            parts.append(f'<text transform="{turn}" text-anchor="end">{_esc(name)}</text>')
        else:
            parts.append(f'<text x="{c:.1f}" y="{top + side + 15}" text-anchor="middle">{_esc(name)}</text>')
    parts.append(f'<text x="{left + side / 2}" y="{height - 6}" text-anchor="middle">{_esc(xlabel)}</text>')
    turn = f"translate(13 {top + side / 2}) rotate(-90)"
    parts.append(f'<text transform="{turn}" text-anchor="middle">{_esc(ylabel)}</text>')
    # the colour scale: 0 at the bottom, the largest count at the top
    bar_x = left + side + 16
    for step in range(20):
        y = top + side - (step + 1) * side / 20
        fill = _blue(step / 19)
        parts.append(f'<rect x="{bar_x}" y="{y:.1f}" width="12" height="{side / 20 + 0.5:.1f}" fill="{fill}"/>')
    parts.append(f'<text x="{bar_x + 16}" y="{top + side}">0</text>')
    parts.append(f'<text x="{bar_x + 16}" y="{top + 9}">{_tick(high)}</text>')
    return "".join(parts) + "</svg>"


def bars(values: dict[str, float], *, title: str, xlabel: str, color: str = BLUE) -> str:
    """One horizontal bar per name, in the order given (top to bottom), from zero."""
    label = min(max((_text_width(n) for n in values), default=0.0), 200.0) + 10
    left, top, row = 10 + label, 28, 24
    pw = 300
    width, height = int(left + pw + 20), int(top + row * len(values) + 40)
    high = max([v for v in values.values() if _finite(v)], default=0.0) or 1.0
    parts = [_open(width, height), _title(left + pw / 2, 18, title)]
    for i, (name, value) in enumerate(values.items()):
        y = top + i * row
        length = max(float(value), 0.0) / high * pw if _finite(value) else 0.0
        parts.append(f'<rect x="{left}" y="{y + 4}" width="{length:.1f}" height="{row - 8}" fill="{color}"/>')
        parts.append(f'<text x="{left - 6}" y="{y + row / 2 + 4}" text-anchor="end">{_esc(name)}</text>')
        parts.append(f'<text x="{left + length + 4:.1f}" y="{y + row / 2 + 4}">{_tick(value)}</text>')
    bottom = top + row * len(values)
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#333"/>')
    parts.append(f'<text x="{left + pw / 2}" y="{bottom + 24}" text-anchor="middle">{_esc(xlabel)}</text>')
    return "".join(parts) + "</svg>"


# --------------------------------------------------------------------------------------- helpers


def _open(width: int, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {FONT}>'
    )


def _title(x: float, y: float, text: str) -> str:
    return f'<text x="{x}" y="{y}" text-anchor="middle" font-size="13">{_esc(text)}</text>'


def _legend(series: Sequence[Series], where: str, left: float, top: float, pw: float, ph: float) -> str:
    if not series:
        return ""
    width = max(_text_width(s.label or "") for s in series) + 34
    height = 16 * len(series) + 6
    x = left + pw - width - 6 if where.endswith("right") else left + 6
    y = top + 6 if where.startswith("upper") else top + ph - height - 6
    box = f'x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height}"'
    parts = [f'<rect {box} fill="white" fill-opacity="0.85" stroke="#ccc"/>']
    for i, s in enumerate(series):
        row = y + 13 + 16 * i
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        parts.append(
            f'<line x1="{x + 6:.1f}" y1="{row - 4:.1f}" x2="{x + 24:.1f}" y2="{row - 4:.1f}" stroke="{s.color}" '
            f'stroke-width="2"{dash}/>'
        )
        parts.append(f'<text x="{x + 29:.1f}" y="{row:.1f}">{_esc(s.label)}</text>')
    return "".join(parts)


def _span(values: Sequence[float], pad: float = 0.0) -> tuple[float, float]:
    """The range of `values`, widened a little (and never empty) so that no point sits on the frame."""
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    margin = (hi - lo) * pad
    return lo - margin, hi + margin


def _ticks(lo: float, hi: float, integer: bool = False, count: int = 5) -> list[float]:
    """About `count` round tick values (1, 2, 2.5 or 5 times a power of ten) within [lo, hi]."""
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if integer:
        step = max(1.0, round(step))
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _tick(value: float) -> str:
    return f"{value:.4g}" if abs(value) >= 1e-12 else "0"


def _blue(share: float) -> str:
    """White to dark blue (matplotlib's "Blues", roughly) for a share in [0, 1]."""
    share = min(max(share, 0.0), 1.0)
    low, high = (247, 251, 255), (8, 48, 107)
    r, g, b = (round(a + (z - a) * share) for a, z in zip(low, high, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def _text_width(text: str) -> float:
    """A rough width in pixels at 11 px: wide (CJK) characters count double."""
    return sum(11.0 if ord(c) > 0x2E7F else 6.2 for c in str(text))


def _finite(value: object) -> bool:
    try:
        return not isinstance(value, bool) and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)
