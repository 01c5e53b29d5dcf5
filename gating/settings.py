"""Flow settings: the template per panel, how panels are recognised, marker spellings and the
counting-bead numbers. Everything has a default; the lead loads the `[flow]` table of the TOML
settings and passes it to `flow_settings_from_dict`.

Panel detection (`gating.panels.detect_panel`) first tries `panel_patterns` against the keywords
named in `panel_keywords` (in that order: the tube name, then `$SRC`, then `$FIL`), then falls back
to the markers: the panel whose template's markers are all in the file, preferring the template
that uses the most of them.

Counting beads: cells/uL = cells / beads x beads per test / sample volume (uL). The beads per test
and the sample volume are read from the first of `beads_per_test_keywords` /
`sample_volume_keywords` present in the file (they change with the bead lot and the tube), else
taken from `beads_per_test` / `sample_volume_ul`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assaykit import settings_from_dict
from gating.markers import DEFAULT_MARKER_ALIASES

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

DEFAULT_TEMPLATES: dict[str, Path] = {
    "tcell": TEMPLATES_DIR / "tcell_panel.xml",
    "bcell": TEMPLATES_DIR / "bcell_panel.xml",
}
DEFAULT_PANEL_PATTERNS: dict[str, str] = {
    "tcell": r"(?i)(\bT[ _-]?cells?\b|TCELL|CAR[ _-]?T\b)",
    "bcell": r"(?i)(\bB[ _-]?cells?\b|BCELL)",
}


@dataclass(frozen=True)
class LogicleParameters:
    """Logicle used for `median_transformed` of markers that no template gate transforms."""

    t: float = 262144.0
    w: float = 0.5
    m: float = 4.5
    a: float = 0.0


GATING_ENGINES = ("fast", "flowkit")


@dataclass(frozen=True)
class FlowSettings:
    templates: Mapping[str, Path] = field(default_factory=lambda: dict(DEFAULT_TEMPLATES))
    """Panel name -> Gating-ML 2.0 file or FlowJo 10 workspace (.wsp)."""
    panel_patterns: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PANEL_PATTERNS))
    """Panel name -> regular expression searched in the `panel_keywords` values."""
    panel_keywords: tuple[str, ...] = ("TUBE NAME", "$SRC", "$FIL")
    marker_aliases: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_MARKER_ALIASES)
    )
    """Canonical marker -> `$PnS` spellings; `flow_settings_from_dict` adds to the defaults."""
    bead_population: str = "Beads"
    """The gate ID of the counting-bead gate in the templates."""
    beads_per_test: float | None = None
    sample_volume_ul: float | None = None
    beads_per_test_keywords: tuple[str, ...] = ("BEADS PER TEST", "BEAD COUNT", "#BEADS")
    sample_volume_keywords: tuple[str, ...] = ("SAMPLE VOLUME (UL)", "SAMPLE VOLUME UL")
    default_transform: LogicleParameters = field(default_factory=LogicleParameters)
    gating_engine: str = "fast"
    """"fast" (gating.fast: each channel transformed once, children evaluated on their parent's
    events) or "flowkit" (FlowKit's own gate_sample, the reference). Both give identical
    memberships; the test suite compares them."""

    def __post_init__(self) -> None:
        if self.gating_engine not in GATING_ENGINES:
            raise ValueError(
                f"gating_engine = {self.gating_engine!r}: expected one of {', '.join(GATING_ENGINES)}"
            )
        for name in ("beads_per_test", "sample_volume_ul"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} = {value:g}: expected a number above 0")
        for panel, pattern in self.panel_patterns.items():
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(
                    f"panel_patterns.{panel} = {pattern!r}: not a valid regular expression ({err})"
                ) from err


def flow_settings_from_dict(values: Mapping[str, Any]) -> FlowSettings:
    """Settings from a mapping such as the `[flow]` table of cartflow.toml (an unknown key is
    an error; `assaykit.settings_from_dict`).

    `templates` paths may be relative to the working directory; `templates` and `panel_patterns`
    replace the defaults of the panels they name; `marker_aliases` extends the default alias
    table (a canonical name given here adds spellings).
    """
    return settings_from_dict(
        FlowSettings,
        values,
        {
            "templates": lambda given: {
                **DEFAULT_TEMPLATES,
                **{panel: Path(path) for panel, path in given.items()},
            },
            "panel_patterns": lambda given: {**DEFAULT_PANEL_PATTERNS, **given},
            "marker_aliases": _merged_aliases,
            "default_transform": lambda given: settings_from_dict(LogicleParameters, given),
        },
    )


def _merged_aliases(extra: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    merged = dict(DEFAULT_MARKER_ALIASES)
    for canonical, spellings in extra.items():
        merged[canonical] = (*merged.get(canonical, ()), *spellings)
    return merged
