"""Figures drawn with matplotlib and embedded in the report pages as inline SVG.

matplotlib is the plotting library of the pages: it draws static figures with no script and no
server, so a page stays one self-contained file that opens offline and prints, and it draws what
a hand-built SVG writer could not: a density plot of 100,000 events, a log-scaled standard curve
with its fit, a plate map. The pyplot state machine is never used: each
figure is a `matplotlib.figure.Figure` made here and closed by being garbage, so rendering is
thread-safe and needs no display.

A figure becomes ``<svg class="plot" role="img" aria-label="…">`` (`svg`). Artists that carry
data get a gid from `data_gid`, which matplotlib writes as the id of their SVG group, so a browser
check can tell a drawn plot from empty axes. Dense layers (event clouds) are drawn as a 2-D
histogram with `Axes.imshow`, which matplotlib embeds as one PNG image carrying the gid (an artist
drawn with ``rasterized=True`` loses its gid): the page's Content-Security-Policy admits ``data:``
images for that reason.
"""

from __future__ import annotations

import io
import itertools
import re
from html import escape

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

# One look for every figure: the page's font size, no top/right spines, light grid.
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e5e5e5",
    "grid.linewidth": 0.6,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "svg.fonttype": "none",  # text stays text: searchable, sharp, and read by screen readers
    "svg.hashsalt": "cartflow",  # ids are stable from run to run, so pages diff cleanly
    "figure.dpi": 100,
    "savefig.dpi": 100,
}
# Colour-blind-safe categorical colours (Okabe & Ito), in the order series are drawn.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
PASS_COLOUR, FAIL_COLOUR, WARN_COLOUR = "#1b7a1b", "#b00020", "#a06000"

_gid_numbers = itertools.count()


def new_figure(width_in: float, height_in: float, fixed_margins: bool = False) -> Figure:
    """A blank figure in the reports' style, sized in inches at 100 px per inch. Laid out by
    matplotlib's constrained layout, or with `fixed_margins` by the caller placing its axes:
    a figure with a layout engine (even one switched off afterwards) is drawn twice on saving,
    once to lay it out, which doubles the cost of the many small plots of a gating page."""
    with mpl.rc_context(STYLE):
        return Figure(
            figsize=(width_in, height_in), layout=None if fixed_margins else "constrained"
        )


def styled(axes: Axes) -> Axes:
    """Apply the style to axes made outside `rc_context` (rcParams are read at creation)."""
    axes.grid(True, color=STYLE["grid.color"], linewidth=STYLE["grid.linewidth"])
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return axes


def data_gid(kind: str) -> str:
    """A unique SVG id for an artist holding data; the browser checks count these."""
    return f"data-{re.sub(r'[^a-z0-9-]+', '-', kind.lower()).strip('-')}-{next(_gid_numbers)}"


def svg(figure: Figure, label: str) -> str:
    """The figure as inline SVG markup named by `label` (its accessible name and tooltip)."""
    buffer = io.StringIO()
    with mpl.rc_context(STYLE):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    markup = buffer.getvalue()
    start = markup.index("<svg")
    markup = markup[start:]
    opening_end = markup.index(">")
    opening = markup[:opening_end]
    opening = opening.replace("<svg", "<svg class=\"plot\" role=\"img\" "
                              f"aria-label=\"{escape(label)}\"", 1)  # fmt: skip
    return f"{opening}><title>{escape(label)}</title>{markup[opening_end + 1 :]}"
