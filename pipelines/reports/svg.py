"""Inline SVG line charts: no JavaScript, no fonts or files to fetch, so a report opens offline
and prints as it shows.

A `Chart` holds series of (x, y) points, optional horizontal reference lines (an LOQ, a
threshold), shaded x spans (aplasia periods) and vertical marks (alerts). The y axis is linear or
log10. Values that cannot be drawn (missing, infinite, or <= 0 on a log axis) are left out of the
picture, so partial data never breaks a chart; `has_points` says whether anything is left to draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
           "#e377c2", "#7f7f7f", "#bcbd22", "#393b79", "#ad494a", "#637939")  # fmt: skip
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 72, 150, 30, 44


@dataclass(frozen=True)
class Series:
    label: str
    points: list[tuple[float, float]]
    color: str = PALETTE[0]
    hollow: list[tuple[float, float]] = field(default_factory=list)
    """Points drawn as open circles and not joined (e.g. below the LOQ, censored)."""
    dashed: bool = False
    labelled: list[tuple[float, float, str]] = field(default_factory=list)
    """(x, y, text): open downward triangles with the text beside them, not joined (e.g. "not
    detected", drawn at the LOQ)."""


@dataclass(frozen=True)
class Chart:
    title: str
    x_label: str
    y_label: str
    series: list[Series]
    log_y: bool = False
    hlines: list[tuple[float, str]] = field(default_factory=list)
    """(y, label): reference lines such as an LOQ or a threshold."""
    spans: list[tuple[float, float, str]] = field(default_factory=list)
    """(x from, x to, label): shaded periods."""
    marks: list[tuple[float, str]] = field(default_factory=list)
    """(x, label): vertical marks such as alerts."""
    band: tuple[float, float] | None = None
    """(y from, y to): a shaded horizontal band, e.g. mean +/- 2 SD."""


@dataclass(frozen=True)
class _Scale:
    low: float
    high: float
    start: float
    length: float
    log: bool = False
    flip: bool = False

    def __call__(self, value: float) -> float:
        v, lo, hi = value, self.low, self.high
        if self.log:
            v, lo, hi = math.log10(value), math.log10(lo), math.log10(hi)
        fraction = (v - lo) / (hi - lo) if hi != lo else 0.5
        if self.flip:
            fraction = 1.0 - fraction
        return self.start + fraction * self.length


def nice_step(span: float, target_ticks: int = 6) -> float:
    raw = span / max(target_ticks, 1)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def linear_ticks(low: float, high: float) -> tuple[float, float, list[float]]:
    """A rounded axis range and its ticks."""
    if low == high:
        low, high = low - 1, high + 1
    step = nice_step(high - low)
    start, end = math.floor(low / step) * step, math.ceil(high / step) * step
    count = round((end - start) / step)
    return start, end, [start + i * step for i in range(count + 1)]


def log_ticks(low: float, high: float) -> tuple[float, float, list[float]]:
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    last = max(last, first + 1)
    return 10.0**first, 10.0**last, [10.0**e for e in range(first, last + 1)]


def fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-2:
        exponent = math.floor(math.log10(abs(value)))
        mantissa = value / 10**exponent
        return f"1e{exponent}" if round(mantissa, 6) == 1 else f"{mantissa:g}e{exponent}"
    return f"{value:.4g}"


def _finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def drawable(chart: Chart) -> Chart:
    """The chart without what cannot be drawn: points, lines, spans and marks with a missing or
    infinite coordinate, and y values <= 0 on a log axis."""

    def fits(y: float) -> bool:
        return _finite(y) and (y > 0 or not chart.log_y)

    series = [
        replace(
            s, points=[(x, y) for x, y in s.points if _finite(x) and fits(y)],
            hollow=[(x, y) for x, y in s.hollow if _finite(x) and fits(y)],
            labelled=[(x, y, t) for x, y, t in s.labelled if _finite(x) and fits(y)],
        )
        for s in chart.series
    ]  # fmt: skip
    band = chart.band if chart.band and all(fits(y) for y in chart.band) else None
    return replace(
        chart, series=series, hlines=[(y, label) for y, label in chart.hlines if fits(y)],
        spans=[(a, b, label) for a, b, label in chart.spans if _finite(a, b)],
        marks=[(x, label) for x, label in chart.marks if _finite(x)], band=band,
    )  # fmt: skip


def has_points(chart: Chart) -> bool:
    """Whether any series of the chart has a point that can be drawn."""
    return any(s.points or s.hollow or s.labelled for s in drawable(chart).series)


def _extent(chart: Chart) -> tuple[list[float], list[float]]:
    placed = [(x, y) for s in chart.series for x, y in [*s.points, *s.hollow]]
    placed += [(x, y) for s in chart.series for x, y, _ in s.labelled]
    xs = [x for x, _ in placed] + [x for x, _ in chart.marks]
    xs += [v for a, b, _ in chart.spans for v in (a, b)]
    ys = [y for _, y in placed] + [y for y, _ in chart.hlines]
    return xs, ys + (list(chart.band) if chart.band else [])


def render(chart: Chart, width: int = 820, height: int = 300) -> str:
    """The chart as an `<svg class="plot">` element. Raises ValueError when no point can be
    drawn: callers check `has_points` first and say on the page why the chart is missing."""
    if not has_points(chart):
        raise ValueError(f"chart {chart.title!r} has nothing to draw")
    chart = drawable(chart)
    xs, ys = _extent(chart)
    x0, x1, x_ticks = linear_ticks(min(xs), max(xs))
    y0, y1, y_ticks = (log_ticks if chart.log_y else linear_ticks)(min(ys), max(ys))
    plot_w = width - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = height - MARGIN_TOP - MARGIN_BOTTOM
    sx = _Scale(x0, x1, MARGIN_LEFT, plot_w)
    sy = _Scale(y0, y1, MARGIN_TOP, plot_h, log=chart.log_y, flip=True)
    bottom, right = MARGIN_TOP + plot_h, MARGIN_LEFT + plot_w
    parts = [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(chart.title)}">',
        f"<title>{escape(chart.title)}</title>",
        f'<rect x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{plot_w}" height="{plot_h}" '
        'fill="#fff" stroke="#999"/>',
    ]
    if chart.band:
        top_y, low_y = sy(max(chart.band)), sy(min(chart.band))
        parts.append(f'<rect x="{MARGIN_LEFT}" y="{top_y:.1f}" width="{plot_w}" '
                     f'height="{low_y - top_y:.1f}" fill="#e8f4e8"/>')  # fmt: skip
    for a, b, label in chart.spans:
        left, span_right = sx(max(a, x0)), sx(min(b, x1))
        parts.append(
            f'<rect class="span" x="{left:.1f}" y="{MARGIN_TOP}" width="{span_right - left:.1f}" '
            f'height="{plot_h}" fill="#f3d9fa" opacity="0.7"><title>{escape(label)}</title></rect>'
        )
    for tick in x_ticks:
        x = sx(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" '
                     'stroke="#555"/>')  # fmt: skip
        parts.append(f'<text x="{x:.1f}" y="{bottom + 17}" text-anchor="middle">{fmt(tick)}</text>')
    for tick in y_ticks:
        y = sy(tick)
        parts.append(f'<line x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" '
                     'stroke="#eee"/>')  # fmt: skip
        parts.append(f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{fmt(tick)}</text>")  # fmt: skip
    for value, label in chart.hlines:
        y = sy(value)
        parts.append(f'<line class="ref" x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{right}" '
                     f'y2="{y:.1f}" stroke="#444" stroke-dasharray="6 4"/>')  # fmt: skip
        parts.append(f'<text x="{right - 4}" y="{y - 4:.1f}" text-anchor="end" '
                     f'font-size="11">{escape(label)}</text>')  # fmt: skip
    for index, (x_value, label) in enumerate(chart.marks):
        x = sx(x_value)
        parts.append(
            f'<line class="mark" x1="{x:.1f}" y1="{MARGIN_TOP}" x2="{x:.1f}" y2="{bottom}" '
            f'stroke="#d62728" stroke-width="2"><title>{escape(label)}</title></line>'
        )
        parts.append(f'<text x="{x + 3:.1f}" y="{MARGIN_TOP + 12 + 12 * index}" fill="#d62728" '
                     f'font-size="11">{escape(label)}</text>')  # fmt: skip
    for index, series in enumerate(chart.series):
        parts.extend(_series(series, sx, sy, right, MARGIN_TOP + 14 + 16 * index))
    parts.append(f'<text x="{MARGIN_LEFT + plot_w / 2:.1f}" y="{height - 8}" '
                 f'text-anchor="middle">{escape(chart.x_label)}</text>')  # fmt: skip
    parts.append(f'<text transform="translate(14 {MARGIN_TOP + plot_h / 2:.1f}) rotate(-90)" '
                 f'text-anchor="middle">{escape(chart.y_label)}</text>')  # fmt: skip
    parts.append(f'<text x="{MARGIN_LEFT}" y="{MARGIN_TOP - 10}" font-weight="bold">'
                 f"{escape(chart.title)}</text>")  # fmt: skip
    parts.append("</svg>")
    return "\n".join(parts)


def _series(series: Series, sx: _Scale, sy: _Scale, right: float, legend_y: float) -> list[str]:
    color = escape(series.color)
    points = sorted(series.points)
    parts = []
    if len(points) > 1:
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(points)
        )
        dash = ' stroke-dasharray="4 3"' if series.dashed else ""
        parts.append(f'<path class="series" d="{path}" fill="none" stroke="{color}" '
                     f'stroke-width="2"{dash}/>')  # fmt: skip
    for x, y in points:
        parts.append(f'<circle class="point" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" '
                     f'fill="{color}"><title>{escape(series.label)}: day {fmt(x)}, '
                     f"{fmt(y)}</title></circle>")  # fmt: skip
    for x, y in series.hollow:
        parts.append(f'<circle class="point censored" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" '
                     f'fill="#fff" stroke="{color}" stroke-width="1.5"><title>'
                     f"{escape(series.label)}: day {fmt(x)}, censored at {fmt(y)}</title>"
                     "</circle>")  # fmt: skip
    for x, y, text in series.labelled:
        cx, cy = sx(x), sy(y)
        parts.append(f'<path class="point labelled" d="M{cx - 4.5:.1f},{cy - 4:.1f} '
                     f'L{cx + 4.5:.1f},{cy - 4:.1f} L{cx:.1f},{cy + 4:.1f} Z" fill="#fff" '
                     f'stroke="{color}" stroke-width="1.5"><title>{escape(series.label)}: day '
                     f"{fmt(x)}, {escape(text)}</title></path>")  # fmt: skip
        parts.append(f'<text x="{cx + 6:.1f}" y="{cy + 14:.1f}" font-size="10" fill="{color}">'
                     f"{escape(text)}</text>")  # fmt: skip
    parts.append(f'<rect x="{right + 8}" y="{legend_y - 8}" width="12" height="4" '
                 f'fill="{color}"/>')  # fmt: skip
    parts.append(f'<text x="{right + 24}" y="{legend_y - 3}" font-size="11">'
                 f"{escape(series.label[:22])}</text>")  # fmt: skip
    return parts
