"""One plot per gate of a gated FCS dataset, in FlowJo's layout: the parent population's events
on the gate's dimensions, the gate drawn over them, its count and % of parent written beside it.

The events are placed the way the gate is evaluated: the gate's compensation (FlowKit applies the
one matrix any of its dimensions references to every dimension that is a detector of it), then
the dimension's transformation from the template, bounds included. Gate vertices and thresholds
are already in that transformed space, so they are drawn as the template gives them.
Membership and the numbers come from the gating engine (`gating.analysis.gate_dataset`,
`population_rows`), so they are the ones in `flow_populations`; only the drawing is subsampled.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass

import flowkit as fk
import numpy as np
import pandas as pd
from flowkit import gates as fk_gates
from flowkit.exceptions import QuadrantReferenceError
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.patches import Polygon, Rectangle
from matplotlib.ticker import FixedFormatter, FixedLocator, FuncFormatter

from gating.analysis import Gating
from gating.engine import ChannelLabels, fluorescence_matrix
from gating.templates import BoundedTransform
from pipelines.reports.plots import COLOURS, data_gid, new_figure, styled, svg

MAX_EVENTS_DRAWN = 20_000
"""Events drawn per plot at most, picked at random from the parent (the same ones every time):
a plot of 20,000 events shows the shape of a population as well as one of a million, and keeps a
tube's page quick to write and to open."""
DENSITY_BINS = 128
GATE_COLOUR = "#000000"
PLOT_AREA = (0.25, 0.24, 0.71, 0.63)
"""The axes' left, bottom, width and height in the figure: the same labels in every plot."""
UNCOMPENSATED = (None, "uncompensated")
ALL_EVENTS = "All events"

GateKey = tuple[str, tuple[str, ...]]


@dataclass(frozen=True)
class Axis:
    """One dimension of a plot: a channel of the file, as the gate reads it."""

    dimension: str
    """The dimension's name in the template (a marker or a `$PnN`)."""
    channel: int
    compensated: bool
    transform_ref: str | None
    label: str


@dataclass(frozen=True)
class Population:
    """A population the plot reports: the gate itself, or one quadrant of a quadrant gate."""

    name: str
    count: int
    pct_parent: float


@dataclass(frozen=True)
class GatePlot:
    """One gate's plot: the gate, its title ("parent → gate") and the numbers it shows."""

    key: GateKey
    gate: object
    title: str
    populations: list[Population]
    parent_count: int

    @property
    def label(self) -> str:
        """The plot's accessible name: its title and every number written on it."""
        numbers = "; ".join(
            f"{p.name} {p.count:,} events, {_percent(p.pct_parent)} of parent"
            for p in self.populations
        )
        return f"{self.title}: {numbers}"


def gates_in_hierarchy_order(strategy: fk.GatingStrategy) -> list[GateKey]:
    """Every gate (a quadrant gate once, not per quadrant), parents before their children and
    each branch followed to its end before the next, siblings in the template's order: the
    order of FlowJo's layout."""
    children: dict[tuple[str, ...], list[str]] = {}
    for name, path in strategy.get_gate_ids():
        try:
            strategy.get_gate(name, path)
        except QuadrantReferenceError:
            continue
        children.setdefault(tuple(path), []).append(name)

    def walk(path: tuple[str, ...]) -> Iterator[GateKey]:
        for name in children.get(path, []):
            yield name, path
            yield from walk((*path, name))

    return list(walk(("root",)))


def gate_plots(gating: Gating, populations: pd.DataFrame) -> list[GatePlot]:
    """What each gate's plot reports, from `population_rows` of the same gating."""
    strategy, template = gating.template.strategy, gating.template
    by_path = populations.set_index("gate_path")
    plots = []
    for name, path in gates_in_hierarchy_order(strategy):
        gate = strategy.get_gate(name, path)
        own = [*path[1:], name]
        members = (
            [[*own, q] for q in gate.quadrants]
            if isinstance(gate, fk_gates.QuadrantGate)
            else [own]
        )
        shown = [
            Population(template.population_name(p[-1]), int(by_path.loc["/".join(p), "count"]),
                       float(by_path.loc["/".join(p), "pct_parent"]))
            for p in members
        ]  # fmt: skip
        parent = ALL_EVENTS if path == ("root",) else template.population_name(path[-1])
        parent_count = (
            gating.dataset.event_count
            if path == ("root",)
            else int(by_path.loc["/".join(path[1:]), "count"])
        )
        title = f"{parent} → {template.population_name(name)}"
        plots.append(GatePlot((name, path), gate, title, shown, parent_count))
    return plots


def _percent(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{value:.1f} %"


# ----------------------------------------------------------------------------- dimensions


def plot_axes(gating: Gating, gate: object) -> list[Axis]:
    """The one or two dimensions the gate's plot shows. A Boolean gate is shown on the
    dimensions of the gates it combines; a gate of three or more dimensions on its first two
    (`extra_conditions` names the rest)."""
    dims = _dimensions(gating.template.strategy, gate)
    return [_axis(gating, dim, matrix) for dim, matrix in dims[:2]]


def _dimensions(strategy: fk.GatingStrategy, gate: object) -> list[tuple[object, str | None]]:
    """(dimension, the gate's compensation reference) of a gate, or of the gates a Boolean
    gate combines (each dimension once)."""
    if isinstance(gate, fk_gates.BooleanGate):
        found, seen = [], set()
        for ref in gate.gate_refs:
            operand = strategy.get_gate(ref["ref"], tuple(ref["path"]))
            for dim, matrix in _dimensions(strategy, operand):
                if _dimension_name(dim) not in seen:
                    seen.add(_dimension_name(dim))
                    found.append((dim, matrix))
        return found
    refs = {dim.compensation_ref for dim in gate.dimensions} - set(UNCOMPENSATED)
    matrix = next(iter(refs), None)
    return [(dim, matrix) for dim in gate.dimensions]


def undrawable(strategy: fk.GatingStrategy, gate: object) -> str | None:
    """Why the gate's plot cannot be drawn (a ratio dimension: the ratio of two channels is
    not kept per event here), or None."""
    if any(isinstance(dim, fk.RatioDimension) for dim, _ in _dimensions(strategy, gate)):
        return "it gates on a ratio of two channels, which these pages do not draw"
    return None


def _dimension_name(dim: object) -> str:
    return dim.dimension_ref if isinstance(dim, fk.QuadrantDivider) else dim.id


def _axis(gating: Gating, dim: object, matrix_ref: str | None) -> Axis:
    name = _dimension_name(dim)
    channels = gating.dataset.channels
    channel = ChannelLabels([c.pnn for c in channels], gating.markers).index(name)
    matrix = gating.template.strategy.comp_matrices.get(matrix_ref) if matrix_ref else None
    if channel is None and matrix is not None:  # named by the matrix's fluorochrome
        channel = [c.pnn for c in channels].index(
            matrix.detectors[matrix.fluorochromes.index(name)]
        )
    compensated = matrix is not None and channels[channel].pnn in matrix.detectors
    transform = gating.template.strategy.transformations.get(dim.transformation_ref)
    return Axis(name, channel, compensated, dim.transformation_ref,
                _axis_label(channels[channel], compensated, transform))  # fmt: skip


def _axis_label(channel: object, compensated: bool, transform: object | None) -> str:
    """`CD3 · PerCP-Cy5-5-A` over `compensated, logicle`: marker ($PnS), detector ($PnN), and
    the scale the gate reads it on."""
    names = f"{channel.pns} · {channel.pnn}" if channel.pns else channel.pnn
    scale = [*(["compensated"] if compensated else []), scale_name(transform)]
    return f"{names}\n{', '.join(scale)}"


def scale_name(transform: object | None) -> str:
    """logicle, asinh, hyperlog, log or linear, as the template transforms the dimension."""
    if transform is None:
        return "linear"
    if isinstance(transform, BoundedTransform):
        return f"{scale_name(transform.inner)}, clamped"
    return type(transform).__name__.removesuffix("Transform").lower()


def axis_values(
    gating: Gating, axes: list[Axis], rows: np.ndarray, matrix_ref: str | None
) -> np.ndarray:
    """The events `rows` on each axis: compensated where the gate compensates the channel,
    then transformed as the template says; one column per axis."""
    strategy = gating.template.strategy
    matrix = strategy.comp_matrices.get(matrix_ref) if matrix_ref else None
    events = np.asarray(gating.events[rows])
    pnn = [c.pnn for c in gating.dataset.channels]
    columns = [gating.columns[a.channel] for a in axes]
    if matrix is not None and any(a.compensated for a in axes):
        detectors = [gating.columns[pnn.index(d)] for d in matrix.detectors]
        values = fluorescence_matrix(events, columns, detectors, matrix.matrix)
    else:
        values = fluorescence_matrix(events, columns)
    values = np.asarray(values, dtype=np.float64)
    for k, axis in enumerate(axes):
        if axis.transform_ref:
            transform = strategy.transformations[axis.transform_ref]
            values[:, k] = np.ravel(transform.apply(values[:, [k]]))
    return values


def gate_matrix_ref(strategy: fk.GatingStrategy, gate: object) -> str | None:
    """The compensation the gate (or the first gate a Boolean gate combines) applies."""
    dims = _dimensions(strategy, gate)
    return next((matrix for _, matrix in dims if matrix), None)


def drawn_rows(mask: np.ndarray, seed: int = 0) -> np.ndarray:
    """The parent's events to draw: all of them, or `MAX_EVENTS_DRAWN` picked at random with a
    fixed seed (so a page redrawn shows the same dots), in file order."""
    rows = np.flatnonzero(mask)
    if rows.size <= MAX_EVENTS_DRAWN:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, MAX_EVENTS_DRAWN, replace=False))


# ----------------------------------------------------------------------------- drawing


def draw_gate_plot(gating: Gating, plot: GatePlot) -> str:
    """The plot as inline SVG: density of the parent's events (histogram for a one-dimension
    gate), the gate, and its numbers."""
    strategy = gating.template.strategy
    _, path = plot.key
    axes_spec = plot_axes(gating, plot.gate)
    parent = (
        np.ones(gating.dataset.event_count, dtype=bool)
        if path == ("root",)
        else gating.membership(path[-1], path[:-1])
    )
    rows = drawn_rows(parent)
    values = axis_values(gating, axes_spec, rows, gate_matrix_ref(strategy, plot.gate))
    figure = new_figure(3.5, 3.4, fixed_margins=True)
    # fixed margins rather than the constrained layout: every plot has the same labels, and
    # laying out is half of a plot's drawing time
    axes = styled(figure.add_axes(PLOT_AREA))
    _intensity_ticks(axes, strategy, axes_spec)
    limits = [_limits(values[:, k], _gate_extent(strategy, plot.gate, a.dimension), a.transform_ref)
              for k, a in enumerate(axes_spec)]  # fmt: skip
    if len(axes_spec) == 2:
        _density(axes, values, limits)
        axes.set_ylabel(axes_spec[1].label)
    else:
        _histogram(axes, values[:, 0], limits[0])
        axes.set_ylabel("events drawn")
    axes.set_xlabel(axes_spec[0].label)
    y_limits = axes.get_ylim() if len(axes_spec) == 1 else limits[1]
    _draw_gate(axes, strategy, plot.gate, axes_spec)
    axes.set_xlim(*limits[0])
    axes.set_ylim(*y_limits)
    _write_numbers(axes, plot, axes_spec)
    if rows.size == 0:
        axes.text(0.5, 0.5, f"no events in {plot.title.split(' → ')[0]}", transform=axes.transAxes,
                  ha="center", va="center", color="#555555")  # fmt: skip
    # placed in figure coordinates: an axes title is positioned by measuring every tick label
    # (a fifth of a plot's drawing time)
    figure.text(PLOT_AREA[0], PLOT_AREA[1] + PLOT_AREA[3] + 0.02, textwrap.fill(plot.title, 42),
                fontsize=9, va="bottom")  # fmt: skip
    extra = extra_conditions(gating, plot.gate, axes_spec)
    drawn = f"{rows.size:,} of {plot.parent_count:,} parent events drawn"
    figure.text(0.01, 0.0, f"{extra}\n{drawn}" if extra else drawn, fontsize=7, color="#555555",
                va="bottom")  # fmt: skip
    return svg(figure, plot.label)


def extra_conditions(gating: Gating, gate: object, shown: list[Axis]) -> str:
    """What a gate requires on dimensions its plot does not show ("also CD3 ≥ 0.7"), and what a
    Boolean gate combines ("NOT CAR+ T cells")."""
    if isinstance(gate, fk_gates.BooleanGate):
        operands = [gating.template.population_name(r["ref"]) for r in gate.gate_refs]
        if gate.type == "not":
            return f"NOT {operands[0]}: the events outside its dashed gate"
        return f" {gate.type.upper()} ".join(operands) + " (their gates drawn)"
    names = {a.dimension for a in shown}
    parts = []
    for dim in getattr(gate, "dimensions", []):
        if _dimension_name(dim) in names or isinstance(dim, fk.QuadrantDivider):
            continue
        low, high = getattr(dim, "min", None), getattr(dim, "max", None)
        bounds = [
            f"≥ {low:g}" if low is not None else "",
            f"< {high:g}" if high is not None else "",
        ]
        transform = gating.template.strategy.transformations.get(dim.transformation_ref)
        scale = f" on the {scale_name(transform)} scale" if transform is not None else ""
        parts.append(f"{_dimension_name(dim)} {' and '.join(b for b in bounds if b)}{scale}")
    return f"also {', '.join(parts)} (not shown)" if parts else ""


INTENSITY_TICKS = {0.0: "0", 1e3: "10³", 1e4: "10⁴", 1e5: "10⁵"}
"""Where a transformed axis is labelled, in the channel's own intensity units (as FlowJo labels
a logicle axis): a technician reads "10³", not the 0.45 the transformation makes of it."""


def _intensity_ticks(axes: Axes, strategy: fk.GatingStrategy, shown: list[Axis]) -> None:
    """Transformed axes ticked at intensities 0, 10³, 10⁴, 10⁵; untransformed scatter, which
    runs to 262,144, as 50k, 100k, ..."""
    for axis, spec in zip((axes.xaxis, axes.yaxis), shown, strict=False):
        if spec.transform_ref is None:
            axis.set_major_formatter(FuncFormatter(_thousands))
            continue
        transform = strategy.transformations[spec.transform_ref]
        intensities = np.array(list(INTENSITY_TICKS), dtype=float)[:, None]
        positions = np.ravel(transform.apply(intensities))
        kept = np.isfinite(positions) & (np.diff(positions, prepend=-np.inf) > 0)
        axis.set_major_locator(FixedLocator(positions[kept]))
        axis.set_major_formatter(
            FixedFormatter(
                [label for label, k in zip(INTENSITY_TICKS.values(), kept, strict=True) if k]
            )
        )


def _thousands(value: float, _position: object) -> str:
    return f"{value / 1000:g}k" if value and abs(value) >= 1000 else f"{value:g}"


def _gate_extent(strategy: fk.GatingStrategy, gate: object, dimension: str) -> list[float]:
    """The gate's coordinates on one dimension, so the axis always shows the gate."""
    if isinstance(gate, fk_gates.BooleanGate):
        return [
            value
            for ref in gate.gate_refs
            for value in _gate_extent(strategy, strategy.get_gate(ref["ref"], tuple(ref["path"])),
                                      dimension)
        ]  # fmt: skip
    found = []
    for k, dim in enumerate(gate.dimensions):
        if _dimension_name(dim) != dimension:
            continue
        if isinstance(gate, fk_gates.PolygonGate):
            found += [v[k] for v in gate.vertices]
        elif isinstance(gate, fk_gates.EllipsoidGate):
            spread = np.sqrt(gate.distance_square * gate.covariance_matrix[k][k])
            found += [gate.coordinates[k] - spread, gate.coordinates[k] + spread]
        elif isinstance(gate, fk_gates.QuadrantGate):
            found += list(dim.values)
        else:
            found += [v for v in (dim.min, dim.max) if v is not None]
    return found


def _limits(
    values: np.ndarray, gate: list[float], transform_ref: str | None
) -> tuple[float, float]:
    """The axis range: the events (0.5-99.5 percentiles), the gate, and the full scale a
    transformation maps to (0-1), so noise in a negative population is not blown up."""
    points = [*gate, 0.0]
    finite = values[np.isfinite(values)]
    if finite.size:
        points += list(np.percentile(finite, [0.5, 99.5]))
    if transform_ref:
        points.append(1.0)
    low, high = min(points), max(points)
    pad = (high - low) * 0.04 or 1.0
    return low - pad, high + pad


def _density(axes: Axes, values: np.ndarray, limits: list[tuple[float, float]]) -> None:
    counts, x_edges, y_edges = np.histogram2d(
        values[:, 0], values[:, 1], bins=DENSITY_BINS, range=limits
    )
    if not counts.any():
        return
    image = axes.imshow(
        np.ma.masked_equal(counts.T, 0), origin="lower", aspect="auto", cmap="viridis",
        norm=LogNorm(vmin=1, vmax=max(counts.max(), 2)), interpolation="nearest",
        extent=(x_edges[0], x_edges[-1], y_edges[0], y_edges[-1]),
    )  # fmt: skip
    image.set_gid(data_gid("events"))


def _histogram(axes: Axes, values: np.ndarray, limits: tuple[float, float]) -> None:
    counts, edges = np.histogram(values, bins=DENSITY_BINS, range=limits)
    if not counts.any():
        return
    steps = axes.stairs(counts, edges, fill=True, color=COLOURS[0], alpha=0.75)
    steps.set_gid(data_gid("events"))
    axes.set_ylim(0, counts.max() * 1.25)


def _draw_gate(
    axes: Axes, strategy: fk.GatingStrategy, gate: object, shown: list[Axis], excluded: bool = False
) -> None:
    """The gate over the events: a polygon, ellipse or the ranges of a rectangle (shaded),
    the dividers of a quadrant gate; for a Boolean gate the gates it combines, dashed and
    unshaded where it excludes them (NOT), since its events lie outside them."""
    names = [a.dimension for a in shown]
    style = {"edgecolor": GATE_COLOUR, "facecolor": "none", "linewidth": 1.3}
    if excluded:
        style["linestyle"] = "--"
    if isinstance(gate, fk_gates.BooleanGate):
        for ref in gate.gate_refs:
            operand = strategy.get_gate(ref["ref"], tuple(ref["path"]))
            _draw_gate(axes, strategy, operand, shown, gate.type == "not" or ref["complement"])
        return
    dims = [_dimension_name(d) for d in gate.dimensions]
    if isinstance(gate, fk_gates.QuadrantGate):
        for dim in gate.dimensions:
            k = names.index(_dimension_name(dim))
            line = (axes.axvline if k == 0 else axes.axhline)(dim.values[0], color=GATE_COLOUR,
                                                               linewidth=1.3)  # fmt: skip
            line.set_gid(data_gid("gate"))
        return
    if isinstance(gate, fk_gates.PolygonGate) and dims[:2] == names:
        artist = axes.add_patch(Polygon(np.asarray(gate.vertices), closed=True, **style))
    elif isinstance(gate, fk_gates.EllipsoidGate) and dims[:2] == names:
        artist = axes.add_patch(Polygon(_ellipse(gate), closed=True, **style))
    else:
        shade = {"facecolor": (0, 0, 0, 0.04)} if not excluded else {}
        artist = _range_patch(axes, gate, names, {**style, **shade})
    artist.set_gid(data_gid("gate"))


def _range_patch(axes: Axes, gate: object, names: list[str], style: dict) -> Rectangle:
    """A rectangle gate's ranges on the shown dimensions, an open end running off the plot."""
    x_low, x_high = (-1e12, 1e12)
    y_low, y_high = (-1e12, 1e12)
    for dim in gate.dimensions:
        if _dimension_name(dim) not in names:
            continue
        low = dim.min if dim.min is not None else -1e12
        high = dim.max if dim.max is not None else 1e12
        if names.index(_dimension_name(dim)) == 0:
            x_low, x_high = low, high
        else:
            y_low, y_high = low, high
    return axes.add_patch(Rectangle((x_low, y_low), x_high - x_low, y_high - y_low, **style))


def _ellipse(gate: object) -> np.ndarray:
    """Points on the boundary (x - mean)ᵀ C⁻¹ (x - mean) = distance²."""
    angles = np.linspace(0, 2 * np.pi, 90)
    circle = np.vstack([np.cos(angles), np.sin(angles)])
    root = np.linalg.cholesky(np.asarray(gate.covariance_matrix, dtype=float)[:2, :2])
    centre = np.asarray(gate.coordinates[:2], dtype=float)[:, None]
    return (centre + np.sqrt(gate.distance_square) * root @ circle).T


def _write_numbers(axes: Axes, plot: GatePlot, shown: list[Axis]) -> None:
    """Each population's name, count and % of parent: at its corner for a quadrant, else at the
    top left of the plot, as FlowJo writes them."""
    box = {"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.8}
    if isinstance(plot.gate, fk_gates.QuadrantGate):
        for population, quadrant in zip(
            plot.populations, plot.gate.quadrants.values(), strict=True
        ):
            x, y = _quadrant_corner(quadrant, plot.gate, shown)
            axes.text(x, y, f"{population.name}\n{population.count:,} · "
                      f"{_percent(population.pct_parent)}", transform=axes.transAxes, fontsize=7.5,
                      ha="left" if x < 0.5 else "right", va="bottom" if y < 0.5 else "top",
                      bbox=box)  # fmt: skip
        return
    population = plot.populations[0]
    x = _label_x(plot.gate, shown, axes.get_xlim())
    axes.text(x, 0.98, f"{population.name}\n{population.count:,} · "
              f"{_percent(population.pct_parent)} of parent", transform=axes.transAxes,
              ha="left" if x < 0.1 else "center", va="top", fontsize=8, bbox=box)  # fmt: skip


def _label_x(gate: object, shown: list[Axis], x_limits: tuple[float, float]) -> float:
    """Where across the plot a gate's numbers go: over the middle of a one-dimension range
    (kept clear of the plot's edges), else at the left."""
    if len(shown) != 1 or not isinstance(gate, fk_gates.RectangleGate):
        return 0.02
    dim = next(d for d in gate.dimensions if _dimension_name(d) == shown[0].dimension)
    low = max(dim.min if dim.min is not None else -np.inf, x_limits[0])
    high = min(dim.max if dim.max is not None else np.inf, x_limits[1])
    middle = ((low + high) / 2 - x_limits[0]) / (x_limits[1] - x_limits[0])
    return float(np.clip(middle, 0.3, 0.7))


def _quadrant_corner(quadrant: object, gate: object, shown: list[Axis]) -> tuple[float, float]:
    corner = [0.02, 0.02]
    names = [a.dimension for a in shown]
    for divider in gate.dimensions:
        low, _ = quadrant.get_divider_range(divider.id)
        k = names.index(divider.dimension_ref)
        corner[k] = 0.98 if low is not None else 0.02
    return corner[0], corner[1]
