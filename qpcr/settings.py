"""qPCR QC thresholds and assay conventions. Every threshold is a setting.

Defaults are the published values collected in NOTES.md: amplification efficiency 90-110 %
(slope -3.6 to -3.1) and R^2 >= 0.98 for the plasmid standard curve. Replicate SD <= 0.5 Cq and
the NTC rule are common lab practice; the limit of detection defaults to 3 copies per reaction,
the Poisson limit at which 95 % of reactions still contain a template copy (MIQE).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assaykit import settings_from_dict


@dataclass(frozen=True)
class QpcrSettings:
    efficiency_min_pct: float = 90.0
    efficiency_max_pct: float = 110.0
    r_squared_min: float = 0.98
    min_standard_levels: int = 3
    replicate_sd_max: float = 0.5
    ntc_max_amplified: int = 0
    """NTC wells allowed to amplify below `ntc_cq_cutoff` before the plate fails."""
    ntc_cq_cutoff: float = 38.0
    """An NTC amplifying at or after this Cq is recorded but not counted as contamination."""
    lod_copies_per_reaction: float = 3.0
    loq_copies_per_reaction: float | None = None
    """None: the LOQ is the lowest standard level whose replicates all amplified."""
    default_dna_input_ng: float | None = None
    """DNA per reaction when neither the export nor the manifest gives it."""
    car_targets: tuple[str, ...] = ("CAR", "FMC63", "CD19CAR", "CD19-CAR", "CAR-T", "SCFV", "WPRE")
    reference_targets: tuple[str, ...] = (
        "RNASEP", "RNASE P", "RPPH1", "ALB", "ALBUMIN", "GAPDH", "ACTB", "B2M", "TERT", "CCR5",
    )  # fmt: skip
    positive_control_names: tuple[str, ...] = (
        "PC", "POS", "POSCTRL", "POS CTRL", "POSITIVE CONTROL", "PTC", "CAR PC",
    )  # fmt: skip
    """Sample names of the run's positive control: quantified per run for QC trends, never a patient."""
    reference_copies_per_cell: float = 2.0
    """A single-copy autosomal reference gene has two copies per diploid cell."""

    def __post_init__(self) -> None:
        if not 0 < self.efficiency_min_pct < self.efficiency_max_pct:
            raise ValueError(
                f"efficiency_min_pct = {self.efficiency_min_pct:g}, efficiency_max_pct = "
                f"{self.efficiency_max_pct:g}: expected 0 < min < max (published: 90 and 110)"
            )
        if not 0 < self.r_squared_min <= 1:
            raise ValueError(f"r_squared_min = {self.r_squared_min:g}: expected above 0, at most 1")
        if self.min_standard_levels < 2:
            raise ValueError(
                f"min_standard_levels = {self.min_standard_levels}: expected 2 or more "
                "(a curve needs two levels)"
            )
        if self.ntc_max_amplified < 0:
            raise ValueError(f"ntc_max_amplified = {self.ntc_max_amplified}: expected 0 or more")
        positive = {
            "replicate_sd_max": self.replicate_sd_max,
            "ntc_cq_cutoff": self.ntc_cq_cutoff,
            "lod_copies_per_reaction": self.lod_copies_per_reaction,
            "loq_copies_per_reaction": self.loq_copies_per_reaction,
            "default_dna_input_ng": self.default_dna_input_ng,
            "reference_copies_per_cell": self.reference_copies_per_cell,
        }
        for name, value in positive.items():
            if value is not None and value <= 0:
                raise ValueError(f"{name} = {value:g}: expected a number above 0")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> QpcrSettings:
        """Settings from a `[qpcr]` table (lists become tuples; an unknown key is an error)."""
        return settings_from_dict(cls, values)

    def is_positive_control(self, sample_name: str) -> bool:
        name = " ".join(sample_name.strip().upper().replace("_", " ").replace("-", " ").split())
        return name in {" ".join(n.upper().split()) for n in self.positive_control_names}

    def role_of(self, target: str) -> str:
        """'car', 'reference' or 'other', matching target names case-insensitively."""
        name = target.strip().upper()
        if any(name == t.upper() or name.startswith(t.upper()) for t in self.car_targets):
            return "car"
        if any(name == t.upper() for t in self.reference_targets):
            return "reference"
        return "other"
