"""Which panel a tube belongs to, and whether an FCS file is a bead-array acquisition at all.

Panel: the first `settings.panel_keywords` value (tube name, `$SRC`, `$FIL`) matching one of
`settings.panel_patterns`; failing that, the panel whose template's markers are all present in the
file (the template using the most markers wins, so a B-cell tube lacking CAR/CD4/CD8 is never
taken for the T-cell panel, and a T-cell tube is not taken for the smaller B-cell one).

Bead array (LEGENDplex, BD CBA; the `cba` package reads those): `is_bead_array(keywords)` is True
when a keyword value names LEGENDplex, CBA, FCAP or a bead array, or when no channel carries a
recognised cell marker (CD3, CD19, CAR, a viability dye...) and PE and APC are read by at most four
fluorescence detectors: the reporter (PE) and classifier (APC) channels of a bead array, not a
phenotyping tube. An unlabelled multicolour control has more detectors and stays a flow file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from gating.errors import FlowTemplateError
from gating.fcs import Channel, channels_of
from gating.markers import (
    DEFAULT_MARKER_ALIASES,
    alias_lookup,
    is_scatter_or_time,
    markers_of,
    recognised_markers,
)
from gating.settings import FlowSettings
from gating.templates import dimension_uses, load_template

_BEAD_ARRAY_WORDS = re.compile(r"(?i)legend ?plex|\bCBA\b|\bFCAP\b|bead[ -]?array")
_DETECTOR_SUFFIX = re.compile(r"-(A|H|W)$", re.IGNORECASE)


def detect_panel(
    keywords: Mapping[str, str],
    channels: list[Channel],
    settings: FlowSettings,
    file_name: str,
) -> str:
    """The panel name (a key of `settings.templates`), or `FlowTemplateError` saying why not."""
    by_keyword = panel_from_keywords(keywords, settings)
    if by_keyword:
        return by_keyword
    lookup = alias_lookup(settings.marker_aliases)
    present = {c.pnn for c in channels} | set(markers_of(channels, lookup))
    fitting = [
        (len(needed), panel)
        for panel, path in settings.templates.items()
        if (needed := template_channels(Path(path))) <= present
    ]
    if fitting:
        return max(fitting)[1]
    raise FlowTemplateError(
        f"{file_name}: cannot tell the panel: no {', '.join(settings.panel_keywords)} value "
        f"matches {dict(settings.panel_patterns)}, and no panel template finds all its markers "
        f"(this file has: {', '.join(markers_of(channels, lookup))}). Name the tube after its "
        "panel or add the panel's template to the flow settings."
    )


def panel_from_keywords(keywords: Mapping[str, str], settings: FlowSettings) -> str | None:
    for key in settings.panel_keywords:
        value = keywords.get(key.upper(), "")
        for panel, pattern in settings.panel_patterns.items():
            if value and re.search(pattern, value):
                return panel
    return None


def template_channels(path: Path) -> frozenset[str]:
    """The channel / marker names a template's gates read (cached per file version)."""
    return _template_channels(path.resolve(), path.stat().st_mtime_ns)


@lru_cache(maxsize=32)
def _template_channels(path: Path, _mtime_ns: int) -> frozenset[str]:
    return frozenset(use.name for use in dimension_uses(load_template(path).strategy))


def is_bead_array(keywords: Mapping[str, str]) -> bool:
    """True for a bead-array acquisition (see the module docstring for the rule)."""
    if any(_BEAD_ARRAY_WORDS.search(value) for value in keywords.values()):
        return True
    channels = channels_of(keywords)
    if recognised_markers(channels, alias_lookup(DEFAULT_MARKER_ALIASES)):
        return False
    fluorescence = [c for c in channels if not is_scatter_or_time(c)]
    words = {w for c in fluorescence for w in re.split(r"[\s_-]+", f"{c.pns} {c.pnn}".upper())}
    detectors = {_DETECTOR_SUFFIX.sub("", c.pnn.upper()) for c in fluorescence}
    return {"PE", "APC"} <= words and len(detectors) <= 4
