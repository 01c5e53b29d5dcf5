"""Bead panels: which bead population carries which analyte, and each standard's top concentration.

The structure follows beadplexr's panel files (MIT, ustervbo/beadplexr `inst/resources/*.yml`):
beads fall into groups by forward/side scatter (A = smaller, B = larger), and within a group the
bead IDs run from low to high classifier (APC) intensity. A lab's panels can be given as a dict in
the same shape (`BeadPanel.from_dict`), e.g. loaded from a `panel.json` beside the FCS files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cba.analytes import canonical_analyte


@dataclass(frozen=True)
class Bead:
    bead_id: str  # e.g. "A4"
    analyte: str  # canonical name
    top_pg_ml: float  # concentration of the top standard


@dataclass(frozen=True)
class BeadPanel:
    """A bead-array kit: bead groups (in scatter order), beads in APC order, standard series."""

    name: str
    groups: dict[str, tuple[Bead, ...]]
    dilution_factor: float = 4.0
    top_level: int = 7  # LEGENDplex C7 is the top standard; C0 the zero standard

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> BeadPanel:
        """From beadplexr's layout: panel_name, std_dilution, analytes: {group: {bead_id:
        {name, concentration}}}; analyte names are mapped to canonical ones (unknown raise)."""
        groups = {
            group: tuple(
                Bead(bead_id, canonical_analyte(bead["name"]), float(bead["concentration"]))
                for bead_id, bead in beads.items()
            )
            for group, beads in spec["analytes"].items()
        }
        return cls(
            name=spec["panel_name"],
            groups=groups,
            dilution_factor=float(spec.get("std_dilution", 4)),
            top_level=int(spec.get("top_level", 7)),
        )

    def standard_pg_ml(self, bead: Bead, level: int) -> float:
        """Concentration of standard C<level>: the top divided by the factor per step; C0 is 0."""
        if level == 0:
            return 0.0
        return bead.top_pg_ml / self.dilution_factor ** (self.top_level - level)


LEGENDPLEX_HUMAN_TH_CYTOKINE_13PLEX = BeadPanel.from_dict({
    "panel_name": "LEGENDplex Human Th Cytokine Panel (13-plex)",
    "std_dilution": 4,
    "analytes": {
        "A": {"A4": {"name": "IL-5", "concentration": 10000},
              "A5": {"name": "IL-13", "concentration": 10000},
              "A6": {"name": "IL-2", "concentration": 10000},
              "A7": {"name": "IL-6", "concentration": 10000},
              "A8": {"name": "IL-9", "concentration": 10000},
              "A10": {"name": "IL-10", "concentration": 10000}},
        "B": {"B2": {"name": "IFN-g", "concentration": 10000},
              "B3": {"name": "TNF-a", "concentration": 10000},
              "B4": {"name": "IL-17A", "concentration": 10000},
              "B5": {"name": "IL-17F", "concentration": 10000},
              "B6": {"name": "IL-4", "concentration": 10000},
              "B7": {"name": "IL-21", "concentration": 10000},
              "B9": {"name": "IL-22", "concentration": 10000}},
    },
})  # fmt: skip
"""From beadplexr's legendplex_human_th_cytokine_panel_13-plex.yml."""
