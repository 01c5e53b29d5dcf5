"""Reading the report figures back from a page's markup, for tests.

The figures are matplotlib SVG (`pipelines.reports.plots`): a layer of data points is a group whose
id starts with `data-` and its kind (`plots.data_gid`), each point a `<use>` of the marker at its
pixel position (y grows down the page); a reference line is a group `ref-<kind>-…` holding one
path; a cytokine panel is a group `panel-<analyte>-…`."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"


def plot(markup: str, title: str) -> str | None:
    """The `<svg class="plot">` of the page named `title`, or None."""
    found = re.search(
        rf'<svg class="plot"[^>]*aria-label="{re.escape(title)}".*?</svg>', markup, re.S
    )
    return found.group(0) if found else None


def groups(chart: str, prefix: str) -> list[ET.Element]:
    """Every element of the chart whose id starts with `prefix`."""
    return [g for g in ET.fromstring(chart).iter() if g.get("id", "").startswith(prefix)]


def _uses(chart: str, kind: str | None) -> list[ET.Element]:
    prefix = "data-" if kind is None else f"data-{kind}-"
    return [use for g in groups(chart, prefix) for use in g.iter(f"{SVG}use")]


def marks(chart: str, kind: str | None) -> list[tuple[float, float]]:
    """Pixel positions of the points of every `data-<kind>-…` layer (None: of every data
    layer), left to right."""
    return sorted((float(u.get("x")), float(u.get("y"))) for u in _uses(chart, kind))


def open_marks(chart: str, kind: str) -> bool:
    """Whether the `data-<kind>-…` layers have points, every one drawn open (white fill)."""
    uses = _uses(chart, kind)
    return bool(uses) and all("fill: #ffffff" in u.get("style", "") for u in uses)


def line_y(chart: str, kind: str) -> float:
    """The pixel height of the first `ref-<kind>-…` horizontal line."""
    path = next(groups(chart, f"ref-{kind}-")[0].iter(f"{SVG}path"))
    return float(path.get("d").split()[2])


def panel(chart: str, analyte_id: str) -> str:
    """The markup of one analyte's panel (its group id is `panel-<analyte id>-…`)."""
    [group] = groups(chart, f"panel-{analyte_id}-")
    return ET.tostring(group, encoding="unicode")
