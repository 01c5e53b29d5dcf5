"""Charts that may have nothing to draw.

Partial data is the normal state of a running trial: a patient with one baseline tube has no CAR+
T cells to split into memory subsets, a plate without DNA input has no copies per ug. A chart none
of whose values can be drawn is left out; a one-line note takes its place on the page and joins
the run's notes (`LeftOut.lines`), so the gap is seen, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pipelines.reports import html


@dataclass
class LeftOut:
    """The charts left out of the pages of one recompute, one line each."""

    lines: list[str] = field(default_factory=list)

    def figure(self, title: str, has_data: bool, draw: Callable[[], str], why: str) -> str:
        """A matplotlib figure (`pipelines.reports.plots`): `draw()`'s markup when there is
        data to draw, otherwise the note saying `title` was not drawn and `why`."""
        if has_data:
            return draw()
        line = f"{title}: not drawn, {why}."
        self.lines.append(line)
        return html.absent(line)
